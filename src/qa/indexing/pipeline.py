"""The ingest pipeline, one for every back end: chunk → hash → embed what is missing → write.

`qa ingest`, the folder watcher, `POST /api/articles` and `qa rebuild` all write through an `Indexer`; the back
end only stores what it is given.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from qa.articles.corpus import CorpusRead, read_paths
from qa.backends.base import Backend, ChunkedArticle
from qa.embedding import Embedder
from qa.events import index_write
from qa.indexing.chunking import ChunkingPolicy, passages_for
from qa.indexing.recorded import build_settings, check_chunking
from qa.progress import Progress
from qa.records import Article, IngestReport
from qa.settings import Settings
from qa.text.sentences import sentence_spans

EMBED_BATCH = 256  # passages embedded (and stored, so a crash loses little) at a time
WRITE_BATCH = 32  # articles written per transaction


def text_hash(text: str) -> str:
    """Key of a passage's text in the embedding store."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def in_shard(article_id: str, shard: tuple[int, int]) -> bool:
    """Whether an article belongs to shard i of n: a stable hash of its id, the same on every machine."""
    i, n = shard
    return int.from_bytes(hashlib.sha256(article_id.encode()).digest()[:8], "big") % n == i


class Indexer:
    """Writes articles into a back end: chunked by `policy`, embedded by the model, unchanged ones skipped.

    The model is asked for only when something needs embedding or counting, so re-reading an unchanged corpus
    never loads it.
    """

    def __init__(self, backend: Backend, model: Callable[[], Embedder], settings: Settings) -> None:
        self.backend = backend
        self.policy = ChunkingPolicy(settings.chunk_tokens, settings.chunk_overlap)
        self.allowed_roots = settings.allowed_roots()
        self.corpus_dir = settings.corpus_dir
        self.index_dir = settings.index_dir
        self._model = model

    @property
    def embedder(self) -> Embedder:
        """The model passages are embedded with."""
        return self._model()

    def ingest(
        self,
        paths: Sequence[Path],
        progress: Progress | None = None,
        *,
        prune: bool = False,
        shard: tuple[int, int] | None = None,
    ) -> IngestReport:
        """Read files and folders into the index; unreadable files are reported and the rest go on.

        An article whose file no longer holds it (its id changed) is removed. With `prune`, so are the articles
        read earlier from files under these paths that are gone; articles added through the API never are. With
        `shard` (i, n), only the articles whose id hashes to shard i of n are written, so n workers can split
        one corpus.
        """
        read = self.without_conflicts(read_paths(paths, self.allowed_roots, self.corpus_dir, self.index_dir))
        articles = [a for a in read.articles if shard is None or in_shard(a.id, shard)]
        if progress is not None:
            progress.total = len(articles)
        report = report_of(self.upsert(articles, progress, read.files), read.skipped)
        reread = set(read.files.values())
        folders = [str(path.resolve()) for path in paths] if prune else []

        def stale(article_id: str, file: str) -> bool:
            if article_id in read.files or (shard is not None and not in_shard(article_id, shard)):
                return False
            return file in reread or any(file == f or file.startswith(f.rstrip("/") + "/") for f in folders)

        report.deleted += self.remove_stale(stale)
        return report

    def without_conflicts(self, read: CorpusRead) -> CorpusRead:
        """The articles read, less those whose id the index holds from another source; a message for each.

        Another source is another file that still exists, or an upload through the API. Re-reading the same
        file is an update, and a file that moved takes its articles along.
        """
        stored = self.backend.stored(list(read.files))
        kept = CorpusRead(skipped=list(read.skipped))
        for article in read.articles:
            file, other = read.files[article.id], stored.get(article.id)
            if other is not None and other.file != file and (other.file is None or Path(other.file).exists()):
                source = other.file or "an article added through the API"
                kept.skipped.append(f"{file}: article id {article.id!r} is already used by {source}; not read")
                continue
            kept.articles.append(article)
            kept.files[article.id] = file
        return kept

    def upsert(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        files: Mapping[str, str] | None = None,
        batch: int = WRITE_BATCH,
    ) -> dict[str, str]:
        """Add new articles and replace changed ones; returns each id's status (added/updated/unchanged).

        `files` maps article ids to the file each was read from, so `--prune` and the watcher can find them.
        Chunking and embedding happen outside the writer lock: other writers wait only for the writes.
        """
        files = files or {}
        statuses: dict[str, str] = {}
        with index_write("ingest") as counts:
            check_chunking(self.backend.meta(), self.policy, self.backend.label)
            pending: dict[str, Article] = {}
            for article in articles:
                pending.pop(article.id, None)  # the last copy of an id wins
                pending[article.id] = article
                if len(pending) >= batch:
                    statuses.update(self._write(list(pending.values()), files, progress))
                    pending = {}
            if pending:
                statuses.update(self._write(list(pending.values()), files, progress))
            counts.update(Counter(statuses.values()))
        return statuses

    def _write(
        self, articles: Sequence[Article], files: Mapping[str, str], progress: Progress | None
    ) -> dict[str, str]:
        stored = self.backend.stored([a.id for a in articles])
        changed = [a for a in articles if a.id not in stored or stored[a.id].content_hash != a.content_hash()]
        chunked = self.chunk(changed)
        texts = _texts_by_hash(chunked)
        self.embed_missing(texts)
        statuses: dict[str, str] = {}
        with self.backend.writing():
            if chunked:
                recorded = self.backend.ensure_meta(self._build_settings())
                check_chunking(recorded, self.policy, self.backend.label)  # another writer may have just recorded it
                self.embed_missing(texts)  # nothing, unless a rebuild dropped vectors no passage used yet
                statuses = self.backend.save_articles(chunked, files, self.embedder.name)
            unchanged = {a.id: files[a.id] for a in articles if a.id not in statuses and a.id in files}
            if unchanged:
                self.backend.set_files(unchanged)
        statuses.update((a.id, "unchanged") for a in articles if a.id not in statuses)
        if progress is not None:
            progress.update(len(articles))
        return statuses

    def chunk(self, articles: Sequence[Article]) -> list[ChunkedArticle]:
        """Each article's passages under the current policy, with their text hashes."""
        tokenizer = self.embedder
        chunked = []
        for article in articles:
            passages = passages_for(article, self.policy, tokenizer)
            chunked.append(ChunkedArticle(article, passages, [text_hash(p.text) for p in passages]))
        return chunked

    def embed_missing(self, texts_by_hash: Mapping[str, str], progress: Progress | None = None) -> None:
        """Embed and store the passage texts this model has no vectors for yet (progress counts passages)."""
        model = self.embedder.name
        missing = sorted(self.backend.missing_embeddings(model, set(texts_by_hash)))
        if progress is not None:
            progress.total = len(missing)
        for first in range(0, len(missing), EMBED_BATCH):
            batch = missing[first : first + EMBED_BATCH]
            texts = [texts_by_hash[h] for h in batch]
            vectors, sentences = self.embedder.encode_with_spans(texts, [sentence_spans(t) for t in texts])
            self.backend.save_embeddings(model, batch, vectors, sentences)
            if progress is not None:
                progress.update(len(batch))

    def delete(self, article_id: str) -> bool:
        """Remove an article; False when there was none with this id."""
        with index_write("delete") as counts, self.backend.writing():
            deleted = self.backend.delete(article_id)
            counts["deleted"] = int(deleted)
            return deleted

    def remove_stale(self, stale: Callable[[str, str], bool]) -> list[str]:
        """Remove the file-backed articles for which `stale(article id, file)` holds; returns their ids."""
        removed = []
        with index_write("delete") as counts, self.backend.writing():
            for article_id, file in sorted(self.backend.files().items()):
                if stale(article_id, file) and self.backend.delete(article_id):
                    removed.append(article_id)
            counts["deleted"] = len(removed)
        return removed

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk or re-embed what the settings changed, then switch to it; returns the passages indexed.

        Everything slow (chunking, embedding) happens first, while the stored generation keeps serving; the new
        passages are written in one transaction, so readers see either every article re-chunked or none.
        """
        with index_write("rebuild"), self.backend.writing():
            if self.backend.meta().get("chunking") not in (None, self.policy.label()):
                chunked = self.chunk(list(self.backend.articles()))
                self.embed_missing(_texts_by_hash(chunked), progress)
                self.backend.save_articles(chunked, self.backend.files(), self.embedder.name, force=True)
            else:
                self.embed_missing(dict(self.backend.passage_texts()), progress)
            return self.backend.finish_rebuild(self._build_settings())

    def _build_settings(self) -> dict[str, str]:
        return build_settings(self.embedder.name, self.embedder.dimension, self.policy)


def report_of(statuses: Mapping[str, str], skipped: Sequence[str] = ()) -> IngestReport:
    """An ingest report from each article's status and the messages of the files that were skipped."""
    report = IngestReport(skipped=list(skipped))
    for article_id, status in statuses.items():
        getattr(report, status).append(article_id)
    return report


def _texts_by_hash(chunked: Sequence[ChunkedArticle]) -> dict[str, str]:
    return {h: p.text for c in chunked for p, h in zip(c.passages, c.text_hashes, strict=True)}
