"""The embedded back end: SQLite as the record of truth, FAISS as its in-memory search structure, in one folder.

Every passage insert or delete is logged (by SQLite triggers, in the same transaction). FAISS checkpoints
(`vectors-<seq>.faiss`) are written atomically; a reader loads the newest and replays the log after it, so a
crash at any moment leaves either the old or the new state, and any process sees another's writes.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.backends.base import ChunkedArticle, FeedItem, PassageRow, SourceCounts, Stored
from qa.backends.faiss_sqlite.locking import WriterLock
from qa.backends.faiss_sqlite.store import FORMAT_VERSION, LogEntry, Store
from qa.backends.faiss_sqlite.vectors import VectorIndex, VectorOptions
from qa.embedding import Vectors
from qa.errors import IndexMismatch
from qa.records import Article, ArticleSummary, Feed, Filters
from qa.settings import Settings

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 5_000  # log entries after which a writer writes a fresh FAISS checkpoint
FILTER_CACHE = 16  # filters whose passage ids are kept (per process, until the next write)
_CHECKPOINT = re.compile(r"^vectors-(\d+)\.faiss$")


class FaissSqliteBackend:
    """The articles, passages and vectors in one folder, with one writer at a time and any number of readers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.index_dir
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.folder / "qa.sqlite3")
        self.writer = WriterLock(self.folder / "writer.lock", settings.writer_timeout)
        self._vectors: VectorIndex | None = None
        self._vectors_model: str | None = None  # the model the in-memory vectors come from
        self._seq = -1
        self._refresh_lock = threading.Lock()
        self._filtered: OrderedDict[tuple[str, int], npt.NDArray[np.int64]] = OrderedDict()
        recorded = self.store.meta().get("format_version", "0")
        if int(recorded) > FORMAT_VERSION:
            raise IndexMismatch(
                f"{self.label} has format {recorded}, newer than this qa ({FORMAT_VERSION}); upgrade qa"
            )

    @property
    def label(self) -> str:
        """Where the data lives."""
        return f"the index in {self.folder}"

    # -- what the index was built with ---------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """Model, dimension, chunking and format the index was built with."""
        return self.store.meta()

    def recorded_model(self) -> str | None:
        """The model the stored vectors come from (one small read: servers call it per query)."""
        return self.store.state()[1]

    def ensure_meta(self, values: Mapping[str, str]) -> dict[str, str]:
        """Record these values on the first write (the caller holds the writer lock); returns what is recorded."""
        if not self.store.meta():
            self._record_meta(values)
        elif not (self.folder / "index.json").exists():
            self._write_manifest()
        return self.store.meta()

    def _record_meta(self, values: Mapping[str, str]) -> None:
        with self.store.transaction() as db:
            self.store.set_meta({"format_version": str(FORMAT_VERSION), **values}, db)
        self._write_manifest()

    def _write_manifest(self) -> None:
        """index.json: a readable copy of the recorded settings."""
        manifest = self.folder / "index.json"
        tmp = manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.store.meta(), indent=2, sort_keys=True) + "\n")
        tmp.replace(manifest)

    # -- writing ------------------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (one writer across processes); a checkpoint is written when one is due."""
        with self.writer.hold():
            yield
            if self.writer.depth == 1:
                self._maybe_checkpoint()

    def stored(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The content hash and file of each of these articles that exists."""
        return self.store.stored(ids)

    def missing_embeddings(self, model: str, text_hashes: Set[str]) -> set[str]:
        """Which passage-text hashes have no stored vectors for this model."""
        return self.store.missing_embeddings(model, text_hashes)

    def save_embeddings(
        self, model: str, text_hashes: Sequence[str], vectors: Vectors, sentences: Sequence[Vectors]
    ) -> None:
        """Store passage and sentence vectors by passage-text hash, in one transaction."""
        with self.store.transaction() as db:
            self.store.save_embeddings(db, model, text_hashes, vectors, sentences)

    def save_articles(
        self, chunked: Sequence[ChunkedArticle], files: Mapping[str, str], model: str, *, force: bool = False
    ) -> dict[str, str]:
        """Write each article whose stored content differs (all, with `force`) in one transaction."""
        statuses: dict[str, str] = {}
        with self.writer.hold(), self.store.transaction() as db:
            known = self.store.stored([c.article.id for c in chunked])
            for item in chunked:
                article, file = item.article, files.get(item.article.id)
                if not force and article.id in known and known[article.id].content_hash == article.content_hash():
                    statuses[article.id] = "unchanged"
                    if file is not None:
                        self.store.set_files(db, {article.id: file})
                    continue
                self.store.save_article(db, article, item.passages, item.text_hashes, file)
                statuses[article.id] = "updated" if article.id in known else "added"
        return statuses

    def set_files(self, files: Mapping[str, str]) -> None:
        """Record which file each (unchanged) article now comes from."""
        with self.store.transaction() as db:
            self.store.set_files(db, dict(files))

    def delete(self, article_id: str) -> bool:
        """Remove an article; False when there was none with this id."""
        with self.writer.hold(), self.store.transaction() as db:
            return self.store.delete_article(db, article_id)

    def finish_rebuild(self, values: Mapping[str, str]) -> int:
        """Record the settings, drop unused vectors, and write a fresh FAISS generation from the stored vectors."""
        with self.writer.hold():
            with self.store.transaction() as db:
                self.store.set_meta({"format_version": str(FORMAT_VERSION), **values}, db)
                self.store.forget_unused_embeddings(db, values["model"])
            self._write_manifest()
            vectors, seq = self._from_stored_vectors()
            self._save_checkpoint(vectors, seq)
            with self._refresh_lock:
                self._vectors, self._seq, self._vectors_model = vectors, seq, values["model"]
            return len(vectors)

    # -- the in-memory FAISS index ------------------------------------------------------------------
    def vectors(self) -> VectorIndex:
        """The FAISS index, brought up to date with every committed write (from any process).

        When a `qa rebuild` elsewhere switched the index to another model, the vectors of the new model are loaded.
        """
        version, model = self.store.state()
        current = self._vectors
        if current is not None and version == self._seq and model in (None, self._vectors_model):
            return current
        with self._refresh_lock, self.store.transaction(write=False):
            version, model = self.store.state()
            if model != self._vectors_model:
                self._vectors = None
            if self._vectors is not None and version == self._seq:
                return self._vectors
            changes = self.store.changes_since(self._seq) if self._vectors is not None else None
            if self._vectors is not None and changes is not None:
                self._apply(self._vectors, changes)
            else:
                self._vectors = self._load(version)
            self._seq, self._vectors_model = version, model
            return self._vectors

    def _apply(self, vectors: VectorIndex, changes: Sequence[LogEntry]) -> None:
        # Passage ids are never reused, so a passage's history is at most one add then one delete.
        removed = {c.passage_id for c in changes if c.op == "del"}
        added = [c.passage_id for c in changes if c.op == "add" and c.passage_id not in removed]
        vectors.remove(sorted(removed))
        ids, matrix = self.store.vectors(self._model_name(), vectors.dimension, added)
        vectors.add(ids, matrix)

    def _model_name(self) -> str:
        return self.store.meta().get("model") or ""

    def _dimension(self) -> int:
        return int(self.store.meta().get("dimension") or 0)

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
            seq = self.store.last_change()
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
        last = self.store.last_change()
        if last - newest >= CHECKPOINT_EVERY or (newest == 0 and last > 0):
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

    # -- retrieval and reading: thin calls into the store and the FAISS index ---------------------------
    def dense(self, query_vector: Vectors, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages, among those of the articles filters allow."""
        vectors = self.vectors()
        if filters is None or not filters.active():
            return vectors.search(query_vector, k)
        return vectors.search(query_vector, k, within=self._filtered_ids(filters))

    def _filtered_ids(self, filters: Filters) -> npt.NDArray[np.int64]:
        """The passage ids the filters allow, from SQLite's indexes; kept for the index state they were read in.

        A page that keeps a filter sends it with every question: the same set is not read again until a write.
        """
        key = (filters.model_dump_json(), self.store.state()[0])
        with self._refresh_lock:
            found = self._filtered.get(key)
            if found is not None:
                self._filtered.move_to_end(key)
                return found
        with self.store.transaction(write=False):
            version = self.store.state()[0]
            ids = self.store.filtered_passage_ids(filters)
        with self._refresh_lock:
            self._filtered[(key[0], version)] = ids
            while len(self._filtered) > FILTER_CACHE:
                self._filtered.popitem(last=False)
        return ids

    def published_range(self) -> tuple[str, str] | None:
        """The oldest and newest ISO publication dates of the articles."""
        return self.store.published_range()

    def similarity(self, query_vector: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of these passages (missing ones left out)."""
        return self.vectors().similarity(query_vector, ids)

    def lexical(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, FTS5 BM25 score; higher is better) of the k best lexical matches the filters allow."""
        return self.store.lexical(query, k, filters)

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        return self.store.passages(ids)

    def passage_ids(self, article_id: str) -> list[int]:
        """Ids of one article's passages, in order."""
        return self.store.passage_ids(article_id)

    def passage_texts(self) -> list[tuple[str, str]]:
        """(text hash, text) of every stored passage."""
        return list(self.store.connection().execute("SELECT text_hash, text FROM passages").fetchall())

    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        return self.store.article(article_id)

    def articles(self) -> Iterator[Article]:
        """Every stored article, in id order."""
        return self.store.articles()

    def summaries(self, offset: int, limit: int, filters: Filters | None = None) -> tuple[int, list[ArticleSummary]]:
        """A page of the articles the filters allow (newest first) and their total."""
        return self.store.summaries(offset, limit, filters)

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        return self.store.counts()

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from."""
        return self.store.files()

    # -- feeds and sources ---------------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        """Every followed feed, in URL order."""
        return self.store.feeds()

    def save_feed(self, feed: Feed) -> None:
        """Add a feed or record its latest poll."""
        with self.store.transaction() as db:
            self.store.save_feed(db, feed)

    def remove_feed(self, url: str) -> bool:
        """Stop following a feed and forget its items; False when it was not followed."""
        with self.store.transaction() as db:
            return self.store.remove_feed(db, url)

    def feed_items(self, url: str) -> list[FeedItem]:
        """What is remembered of a feed's items."""
        return self.store.feed_items(url)

    def save_feed_items(self, url: str, items: Sequence[FeedItem]) -> None:
        """Remember these items of a feed."""
        with self.store.transaction() as db:
            self.store.save_feed_items(db, url, items)

    def source_counts(self) -> SourceCounts:
        """Articles and newest date per site, per folder of files and per feed."""
        with self.store.transaction(write=False):
            return self.store.source_counts()

    def close(self) -> None:
        """Close this thread's SQLite connection."""
        self.store.close()
