"""The ingest pipeline, one for every back end: chunk → hash → embed what is missing → write.

`qa ingest`, the folder watcher, `POST /api/articles` and `qa rebuild` all write through an `Indexer`; the back
end only stores what it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from qa.articles.corpus import read_paths
from qa.backends.base import Backend, ChunkedArticle
from qa.embedding import Embedder
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

        With `prune`, articles read earlier from files under these paths whose files are gone (or no longer
        hold them) are removed; articles added through the API are never pruned. With `shard` (i, n), only
        the articles whose id hashes to shard i of n are written, so n workers can split one corpus.
        """
        read = read_paths(paths, self.allowed_roots, exclude=self.index_dir)
        articles = [a for a in read.articles if shard is None or in_shard(a.id, shard)]
        if progress is not None:
            progress.total = len(articles)
        statuses = self.upsert(articles, progress, read.files)
        report = report_of(statuses, read.skipped)
        if prune:
            folders = [str(path.resolve()) for path in paths]

            def stale(article_id: str, file: str) -> bool:
                inside = any(file == f or file.startswith(f.rstrip("/") + "/") for f in folders)
                mine = shard is None or in_shard(article_id, shard)
                return inside and mine and article_id not in statuses

            report.deleted += self.remove_stale(stale)
        return report

    def upsert(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        files: Mapping[str, str] | None = None,
        batch: int = WRITE_BATCH,
    ) -> dict[str, str]:
        """Add new articles and replace changed ones; returns each id's status (added/updated/unchanged).

        `files` maps article ids to the file each was read from, so `--prune` and the watcher can find them.
        """
        files = files or {}
        statuses: dict[str, str] = {}
        with self.backend.writing():
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
        return statuses

    def _write(
        self, articles: Sequence[Article], files: Mapping[str, str], progress: Progress | None
    ) -> dict[str, str]:
        known = self.backend.content_hashes([a.id for a in articles])
        changed = [a for a in articles if known.get(a.id) != a.content_hash()]
        statuses: dict[str, str] = {}
        if changed:
            recorded = self.backend.ensure_meta(self._build_settings())
            check_chunking(recorded, self.policy, self.backend.label)  # another writer may have just recorded it
            chunked = self.chunk(changed)
            self.embed_missing(_texts_by_hash(chunked))
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
        count_tokens = self.embedder.count_tokens
        chunked = []
        for article in articles:
            passages = passages_for(article, self.policy, count_tokens)
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
        with self.backend.writing():
            return self.backend.delete(article_id)

    def remove_stale(self, stale: Callable[[str, str], bool]) -> list[str]:
        """Remove the file-backed articles for which `stale(article id, file)` holds; returns their ids."""
        removed = []
        with self.backend.writing():
            for article_id, file in sorted(self.backend.files().items()):
                if stale(article_id, file) and self.backend.delete(article_id):
                    removed.append(article_id)
        return removed

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk or re-embed what the settings changed, then switch to it; returns the passages indexed.

        Everything slow (chunking, embedding) happens first, while the stored generation keeps serving; the new
        passages are written in one transaction, so readers see either every article re-chunked or none.
        """
        with self.backend.writing():
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
