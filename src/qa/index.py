"""An index on disk: SQLite as the record of truth, FAISS as its in-memory search structure.

Every passage insert or delete is logged (by SQLite triggers, in the same transaction). FAISS checkpoints
(`vectors-<seq>.faiss`) are written atomically; a reader loads the newest and replays the log after it, so a
crash at any moment leaves either the old or the new state, and any process sees another's writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from qa.backend import Progress
from qa.chunking import ChunkingPolicy, passages_for
from qa.embedding import Embedder, Vectors, load_embedder
from qa.errors import IndexMismatch
from qa.locking import WriterLock
from qa.records import Article, ArticleSummary, Passage
from qa.search import fts_query
from qa.sentences import sentence_spans
from qa.settings import Settings
from qa.store import FORMAT_VERSION, LogEntry, PassageRow, Store
from qa.vectors import VectorIndex, VectorOptions

log = logging.getLogger(__name__)


EMBED_BATCH = 256  # passages embedded (and stored, so a crash loses little) at a time
CHECKPOINT_EVERY = 5_000  # log entries after which a writer writes a fresh FAISS checkpoint
_CHECKPOINT = re.compile(r"^vectors-(\d+)\.faiss$")


def text_hash(text: str) -> str:
    """Key of a passage's text in the embedding store."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _texts_by_hash(chunked: Sequence[tuple[Article, list[Passage], list[str]]]) -> dict[str, str]:
    return {h: p.text for _, passages, hashes in chunked for p, h in zip(passages, hashes, strict=True)}


class Index:
    """The articles, passages and vectors in one folder, with one writer at a time and any number of readers."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, *, rebuilding: bool = False) -> None:
        self.settings = settings
        self.folder = settings.index_dir
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.folder / "qa.sqlite3")
        self.policy = ChunkingPolicy(settings.chunk_tokens, settings.chunk_overlap)
        self.writer = WriterLock(self.folder / "writer.lock", settings.writer_timeout)
        self._embedder = embedder
        self._vectors: VectorIndex | None = None
        self._seq = -1
        self._rebuilding = rebuilding
        self._refresh_lock = threading.Lock()
        self._check_meta(rebuilding)

    # -- what the index was built with ---------------------------------------------------------------
    def _check_meta(self, rebuilding: bool) -> None:
        meta = self.store.meta()
        if not meta:
            return
        if int(meta.get("format_version", "0")) > FORMAT_VERSION:
            raise IndexMismatch(
                f"the index in {self.folder} has format {meta['format_version']}, newer than this qa"
                f" ({FORMAT_VERSION}); upgrade qa"
            )
        wanted = self._embedder.name if self._embedder else self.settings.model
        if meta.get("model") != wanted and not rebuilding:
            raise IndexMismatch(
                f"the index in {self.folder} was built with model {meta.get('model')!r}, not {wanted!r}:"
                f" set QA_MODEL={meta.get('model')} or run `qa rebuild` to re-embed with {wanted!r}"
            )

    @property
    def meta(self) -> dict[str, str]:
        """Model, dimension, chunking and format the index was built with."""
        return self.store.meta()

    @property
    def embedder(self) -> Embedder:
        """The model the index is built with, loaded on first use (and again if a rebuild switched it)."""
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.model)
        if not self._rebuilding:
            self._follow_model(self.store.state()[1])
        return self._embedder

    def _record_meta(self, db: sqlite3.Connection) -> None:
        values = {
            "format_version": str(FORMAT_VERSION),
            "model": self.embedder.name,
            "dimension": str(self.embedder.dimension),
            "chunking": self.policy.describe(),
            "chunk_tokens": str(self.policy.max_tokens),
            "chunk_overlap": str(self.policy.overlap),
        }
        self.store.set_meta(values, db)

    def _write_manifest(self) -> None:
        """index.json: a readable copy of the recorded settings."""
        manifest = self.folder / "index.json"
        tmp = manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.store.meta(), indent=2, sort_keys=True) + "\n")
        tmp.replace(manifest)

    def _check_chunking(self) -> None:
        recorded = self.store.meta().get("chunking")
        if recorded and recorded != self.policy.describe():
            raise IndexMismatch(
                f"the index was chunked as {recorded!r}, the settings ask for {self.policy.describe()!r}:"
                " run `qa rebuild` to re-chunk it"
            )

    # -- writing ------------------------------------------------------------------------------------
    def upsert(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        batch: int = 32,
        files: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Add new articles and replace changed ones; returns each id's status (added/updated/unchanged).

        `files` maps article ids to the file each was read from, so `--prune` and watch can find them.
        """
        statuses: dict[str, str] = {}
        files = files or {}
        with self.writer.hold():
            self._check_chunking()
            known = self.store.content_hashes()
            pending: list[Article] = []
            for article in articles:
                if known.get(article.id) == article.content_hash():
                    statuses[article.id] = "unchanged"
                    if progress is not None:
                        progress.update(1)
                    continue
                statuses[article.id] = "updated" if article.id in known else "added"
                known[article.id] = article.content_hash()
                pending = [a for a in pending if a.id != article.id] + [article]
                if len(pending) >= batch:
                    self._write_batch(pending, progress, files)
                    pending = []
            if pending:
                self._write_batch(pending, progress, files)
            unchanged = {i: files[i] for i, status in statuses.items() if status == "unchanged" and i in files}
            if unchanged:
                with self.store.transaction() as db:
                    self.store.set_files(db, unchanged)
            self._maybe_checkpoint()
        return statuses

    def _write_batch(self, articles: Sequence[Article], progress: Progress | None, files: Mapping[str, str]) -> None:
        chunked = self._chunk(articles)
        self._embed_missing(_texts_by_hash(chunked))
        with self.store.transaction() as db:
            if not self.store.meta():
                self._record_meta(db)
            for article, passages, hashes in chunked:
                self.store.save_article(db, article, passages, hashes, files.get(article.id))
        if not (self.folder / "index.json").exists():
            self._write_manifest()
        if progress is not None:
            progress.update(len(articles))

    def _embed_missing(self, texts_by_hash: dict[str, str], progress: Progress | None = None) -> None:
        """Embed and store the passage texts this model has not embedded yet (progress counts passages)."""
        missing = sorted(self.store.missing_embeddings(self.embedder.name, texts_by_hash))
        if progress is not None:
            progress.total = len(missing)
        for first in range(0, len(missing), EMBED_BATCH):
            batch = missing[first : first + EMBED_BATCH]
            texts = [texts_by_hash[h] for h in batch]
            vectors, sentences = self.embedder.encode_with_spans(texts, [sentence_spans(t) for t in texts])
            with self.store.transaction() as db:
                self.store.save_embeddings(db, self.embedder.name, batch, vectors, sentences)
            if progress is not None:
                progress.update(len(batch))

    def delete(self, article_id: str) -> bool:
        """Remove an article; False when there was none with this id."""
        with self.writer.hold(), self.store.transaction() as db:
            return self.store.delete_article(db, article_id)

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk and re-embed what the settings changed, then switch to the new generation; returns vectors.

        Everything slow (chunking, embedding) happens first, while the old generation keeps serving; the
        switch is one transaction, so readers see either every article re-chunked or none.
        """
        with self.writer.hold():
            meta = self.store.meta()
            if meta.get("chunking") != self.policy.describe():
                self._rechunk(progress)
            else:
                self._embed_missing(self._stored_texts(), progress)
            with self.store.transaction() as db:
                self._record_meta(db)
                self.store.forget_unused_embeddings(db, self.embedder.name)
            self._write_manifest()
            vectors, seq = self._from_stored_vectors()
            self._save_checkpoint(vectors, seq)
            with self._refresh_lock:
                self._vectors, self._seq = vectors, seq
            return len(vectors)

    def _rechunk(self, progress: Progress | None) -> None:
        """Every article split by the current policy and embedded, then swapped in by one transaction."""
        chunked = self._chunk(list(self.store.articles()))
        files = self.store.files()
        self._embed_missing(_texts_by_hash(chunked), progress)
        with self.store.transaction() as db:
            for article, passages, hashes in chunked:
                self.store.save_article(db, article, passages, hashes, files.get(article.id))

    def _chunk(self, articles: Sequence[Article]) -> list[tuple[Article, list[Passage], list[str]]]:
        """Each article's passages under the current policy, with their text hashes."""
        count_tokens = self.embedder.count_tokens
        chunked = []
        for article in articles:
            passages = passages_for(article, self.policy, count_tokens)
            chunked.append((article, passages, [text_hash(p.text) for p in passages]))
        return chunked

    def _stored_texts(self) -> dict[str, str]:
        rows = self.store.connection().execute("SELECT text_hash, text FROM passages")
        return dict(rows.fetchall())

    # -- the in-memory FAISS index ------------------------------------------------------------------
    def vectors(self) -> VectorIndex:
        """The FAISS index, brought up to date with every committed write (from any process).

        When a `qa rebuild` elsewhere switched the index to another model, this process switches too:
        it loads that model for its queries and the new generation of vectors, without a restart.
        """
        version, model = self.store.state()
        current = self._vectors
        if current is not None and version == self._seq and model in (None, self.embedder.name):
            return current
        with self._refresh_lock, self.store.transaction(write=False):
            version, model = self.store.state()
            self._follow_model(model)
            if self._vectors is not None and version == self._seq:
                return self._vectors
            changes = self.store.changes_since(self._seq) if self._vectors is not None else None
            if self._vectors is not None and changes is not None:
                self._apply(self._vectors, changes)
            else:
                self._vectors = self._load(version)
            self._seq = version
            return self._vectors

    def _follow_model(self, model: str | None) -> None:
        """Switch to the model a rebuild (maybe in another process) recorded, dropping the old vectors."""
        if model is not None and self._embedder is not None and model != self._embedder.name and not self._rebuilding:
            log.warning("the index was rebuilt with model %r: switching to it", model)
            self._embedder = load_embedder(model)
            self._vectors = None

    def _apply(self, vectors: VectorIndex, changes: Sequence[LogEntry]) -> None:
        # Passage ids are never reused, so a passage's history is at most one add then one delete.
        removed = {c.passage_id for c in changes if c.op == "del"}
        added = [c.passage_id for c in changes if c.op == "add" and c.passage_id not in removed]
        vectors.remove(sorted(removed))
        ids, matrix = self.store.vectors(self._model_name(), vectors.dimension, added)
        vectors.add(ids, matrix)

    def _model_name(self) -> str:
        return self.store.meta().get("model") or self.embedder.name

    def _dimension(self) -> int:
        recorded = self.store.meta().get("dimension")
        return int(recorded) if recorded else self.embedder.dimension

    def _load(self, version: int) -> VectorIndex:
        """The newest readable checkpoint plus the log after it, or every stored vector."""
        dimension = self._dimension()
        for seq, path in self._checkpoints():
            if seq > version:
                continue
            try:
                vectors = VectorIndex.load(path, dimension, VectorOptions.from_settings(self.settings))
            except ValueError as e:
                log.warning("%s; rebuilding the FAISS index from the stored vectors", e)
                break
            changes = self.store.changes_since(seq)
            if changes is None:
                break
            self._apply(vectors, changes)
            if len(vectors) == self.store.counts()[1]:
                return vectors
            log.warning("checkpoint %s does not match the stored passages; rebuilding from stored vectors", path.name)
            break
        return self._from_stored_vectors()[0]

    def _from_stored_vectors(self) -> tuple[VectorIndex, int]:
        vectors = VectorIndex(self._dimension(), VectorOptions.from_settings(self.settings))
        with self.store.transaction(write=False):
            seq = self.store.version()
            ids, matrix = self.store.vectors(self._model_name(), vectors.dimension)
        vectors.add(ids, matrix)
        return vectors, seq

    def _checkpoints(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.folder.iterdir():
            if match := _CHECKPOINT.match(path.name):
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def _maybe_checkpoint(self) -> None:
        newest = max((seq for seq, _ in self._checkpoints()), default=0)
        if self.store.version() - newest >= CHECKPOINT_EVERY or (newest == 0 and self.store.version() > 0):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Write the current FAISS index to disk and trim the log it makes redundant."""
        with self.writer.hold():
            vectors = self.vectors()
            self._save_checkpoint(vectors, self._seq)

    def _save_checkpoint(self, vectors: VectorIndex, seq: int) -> None:
        path = self.folder / f"vectors-{seq}.faiss"
        vectors.save(path)
        for old_seq, old in self._checkpoints():
            if old_seq != seq:
                old.unlink(missing_ok=True)
        with self.store.transaction() as db:
            self.store.trim_log(db, seq)

    def consistent(self) -> bool:
        """True when SQLite is intact and FAISS holds exactly the stored passages."""
        with self.store.transaction(write=False):
            rows = self.store.connection().execute("SELECT id FROM passages").fetchall()
            expected = np.array(sorted(r[0] for r in rows), dtype=np.int64)
        return self.store.integrity_ok() and np.array_equal(np.sort(self.vectors().ids()), expected)

    # -- the Backend interface (qa.backend): thin calls into the store and the FAISS index -------------
    def dense(self, query_vector: Vectors, k: int) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages."""
        return self.vectors().search(query_vector, k)

    def similarity(self, query_vector: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of these passages (missing ones left out)."""
        return self.vectors().similarity(query_vector, ids)

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        """(passage id, FTS5 BM25 score; higher is better) of the k best lexical matches."""
        match = fts_query(query)
        return self.store.lexical(match, k) if match else []

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        return self.store.passages(ids)

    def passage_texts(self) -> list[str]:
        """Every passage's text."""
        return [row[0] for row in self.store.connection().execute("SELECT text FROM passages")]

    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        return self.store.article(article_id)

    def summaries(self, offset: int, limit: int) -> tuple[int, list[ArticleSummary]]:
        """A page of articles (newest first) and the total."""
        return self.store.summaries(offset, limit)

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        return self.store.counts()

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from."""
        return self.store.files()

    def close(self) -> None:
        """Close this thread's SQLite connection."""
        self.store.close()
