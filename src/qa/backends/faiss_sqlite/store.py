"""SQLite persistence: articles, passages, stored vectors, the lexical (FTS5) index and the change log."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa.backends.base import (
    ARTICLE_COLUMNS,
    ISO_DATE_SQLITE,
    FeedItem,
    PassageRow,
    SourceCounts,
    Stored,
    article_from_row,
    origin_json,
    sentence_blob,
    sentence_matrix,
)
from qa.backends.faiss_sqlite.migrations import migrate
from qa.backends.filters import article_predicate
from qa.embedding import Vectors
from qa.records import Article, ArticleSummary, Feed, Filters, Passage, SourceCount
from qa.text.words import search_terms

FORMAT_VERSION = 1  # of the index folder's files (recorded in meta and index.json); the schema has migrations
_MAX_PARAMETERS = 900  # SQLite's default limit on ? parameters is 999
FEED_KEYS = ("url", "title", "added", "polled", "last_result", "etag", "last_modified")
FEED_COLUMNS = ", ".join(FEED_KEYS)


@dataclass(frozen=True)
class LogEntry:
    """One change to the set of passages."""

    passage_id: int
    op: str


class Store:
    """The SQLite database of an index; one connection per thread, WAL so readers never wait on writers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        migrate(self.connection())

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction: IMMEDIATE for writers, a consistent snapshot for readers; reads nest inside."""
        db = self.connection()
        if db.in_transaction and not write:
            yield db
            return
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- metadata -----------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The index's recorded settings (model, dimension, chunking, format)."""
        return dict(self.connection().execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: dict[str, str], db: sqlite3.Connection | None = None) -> None:
        """Record settings, inside the caller's transaction when given."""
        (db or self.connection()).executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    # -- articles -----------------------------------------------------------------------------------
    def stored(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The hash of what was indexed and the file it came from, for each of these articles that exists."""
        found: dict[str, Stored] = {}
        for first in range(0, len(ids), _MAX_PARAMETERS):
            chunk = list(ids[first : first + _MAX_PARAMETERS])
            marks = ",".join("?" * len(chunk))
            rows = self.connection().execute(
                f"SELECT id, content_hash, file FROM articles WHERE id IN ({marks})", chunk
            )
            found.update((article_id, Stored(content_hash, file)) for article_id, content_hash, file in rows)
        return found

    def save_article(
        self,
        db: sqlite3.Connection,
        article: Article,
        passages: Sequence[Passage],
        hashes: Sequence[str],
        file: str | None = None,
    ) -> None:
        """Insert or replace an article and its passages inside a write transaction."""
        self._delete_passages(db, article.id)
        db.execute(
            "INSERT INTO articles(id, title, text, url, published, author, source, content_hash, updated_at, file,"
            " origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET title = excluded.title,"
            " text = excluded.text, url = excluded.url, published = excluded.published,"
            " author = excluded.author, source = excluded.source, content_hash = excluded.content_hash,"
            " updated_at = excluded.updated_at, file = excluded.file, origin = excluded.origin",
            (
                article.id,
                article.title,
                article.text,
                article.url,
                article.published,
                article.author,
                article.source,
                article.content_hash(),
                datetime.now(UTC).isoformat(timespec="seconds"),
                file,
                origin_json(article),
            ),
        )
        db.executemany(
            "INSERT INTO passages(article_id, ordinal, start, end, text, text_hash) VALUES (?, ?, ?, ?, ?, ?)",
            [(p.article_id, p.ordinal, p.start, p.end, p.text, h) for p, h in zip(passages, hashes, strict=True)],
        )

    def set_files(self, db: sqlite3.Connection, files: dict[str, str]) -> None:
        """Record which file each (unchanged) article now comes from."""
        db.executemany(
            "UPDATE articles SET file = ? WHERE id = ? AND file IS NOT ?", [(f, i, f) for i, f in files.items()]
        )

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from, for articles read from files."""
        return dict(self.connection().execute("SELECT id, file FROM articles WHERE file IS NOT NULL").fetchall())

    def delete_article(self, db: sqlite3.Connection, article_id: str) -> bool:
        """Remove an article and its passages inside a write transaction; False if it was not there."""
        self._delete_passages(db, article_id)
        return db.execute("DELETE FROM articles WHERE id = ?", (article_id,)).rowcount > 0

    def _delete_passages(self, db: sqlite3.Connection, article_id: str) -> None:
        db.execute("DELETE FROM passages WHERE article_id = ?", (article_id,))

    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        row = (
            self.connection().execute(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,)).fetchone()
        )
        return None if row is None else article_from_row(row)

    def articles(self) -> Iterator[Article]:
        """Every article, in id order."""
        for row in self.connection().execute(f"SELECT {ARTICLE_COLUMNS} FROM articles ORDER BY id"):
            yield article_from_row(row)

    def summaries(self, offset: int, limit: int, filters: Filters | None = None) -> tuple[int, list[ArticleSummary]]:
        """A page of the articles (those the filters allow) without their text, newest first, and their total."""
        db = self.connection()
        predicate = article_predicate(filters, "sqlite")
        where = f" WHERE {predicate.sql}" if predicate else ""
        params = predicate.params if predicate else {}
        total = db.execute(f"SELECT COUNT(*) FROM articles a{where}", params).fetchone()[0]
        rows = db.execute(
            "SELECT a.id, a.title, a.url, a.published, a.author, a.source,"
            " (SELECT COUNT(*) FROM passages p WHERE p.article_id = a.id)"
            f" FROM articles a{where} ORDER BY a.published IS NULL, a.published DESC, a.id LIMIT :limit OFFSET :offset",
            {**params, "limit": limit, "offset": offset},
        ).fetchall()
        keys = ("id", "title", "url", "published", "author", "source", "passages")
        return total, [ArticleSummary(**dict(zip(keys, row, strict=True))) for row in rows]

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        db = self.connection()
        return (
            db.execute("SELECT COUNT(*) FROM articles").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM passages").fetchone()[0],
        )

    # -- passages and vectors -----------------------------------------------------------------------
    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.connection().execute(
            "SELECT p.id, p.article_id, a.title, a.url, a.published, p.start, p.end, p.text,"
            " e.sentences, length(e.vector) / 4, a.source"
            " FROM passages p JOIN articles a ON a.id = p.article_id"
            " LEFT JOIN embeddings e ON e.text_hash = p.text_hash"
            " AND e.model = (SELECT value FROM meta WHERE key = 'model')"
            f" WHERE p.id IN ({marks})",
            list(ids),
        )
        return {
            pid: PassageRow(
                pid, article, title, url, published, start, end, text, sentence_matrix(sentences, dim), source
            )
            for pid, article, title, url, published, start, end, text, sentences, dim, source in rows
        }

    def filtered_passage_ids(self, filters: Filters) -> npt.NDArray[np.int64]:
        """The ids of the passages whose articles the filters allow, in order."""
        predicate = article_predicate(filters, "sqlite")
        query = "SELECT p.id FROM articles a JOIN passages p ON p.article_id = a.id"
        if predicate is not None:
            query += f" WHERE {predicate.sql}"
        rows = self.connection().execute(query + " ORDER BY p.id", predicate.params if predicate else {})
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def published_range(self) -> tuple[str, str] | None:
        """The oldest and newest ISO publication dates (YYYY-MM-DD), or None when no article has one."""
        db = self.connection()
        ends = []
        for order in ("ASC", "DESC"):
            row = db.execute(
                f"SELECT substr(published, 1, 10) FROM articles WHERE {ISO_DATE_SQLITE}"
                f" ORDER BY published {order} LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            ends.append(row[0])
        return ends[0], ends[1]

    def passage_ids(self, article_id: str) -> list[int]:
        """Ids of an article's passages, in order."""
        rows = self.connection().execute("SELECT id FROM passages WHERE article_id = ? ORDER BY ordinal", (article_id,))
        return [row[0] for row in rows]

    def missing_embeddings(self, model: str, hashes: Iterable[str]) -> set[str]:
        """Which passage-text hashes have no stored vectors (passage and sentences) for this model."""
        wanted = set(hashes)
        if not wanted:
            return set()
        db = self.connection()
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted(h TEXT PRIMARY KEY)")
        db.execute("DELETE FROM wanted")
        db.executemany("INSERT OR IGNORE INTO wanted(h) VALUES (?)", [(h,) for h in wanted])
        have = {
            row[0]
            for row in db.execute(
                # CROSS JOIN makes SQLite walk the few wanted hashes and look each up by primary key,
                # rather than scan every stored vector (rows are large: a passage's sentences ride along).
                "SELECT w.h FROM wanted w CROSS JOIN embeddings e ON e.model = ? AND e.text_hash = w.h"
                " WHERE e.sentences IS NOT NULL",
                (model,),
            )
        }
        return wanted - have

    def save_embeddings(
        self,
        db: sqlite3.Connection,
        model: str,
        hashes: Sequence[str],
        vectors: Vectors,
        sentences: Sequence[Vectors],
    ) -> None:
        """Store passage and sentence vectors keyed by passage-text hash, inside a write transaction."""
        db.executemany(
            "INSERT OR REPLACE INTO embeddings(model, text_hash, vector, sentences) VALUES (?, ?, ?, ?)",
            [
                (model, h, v.astype(np.float32).tobytes(), sentence_blob(s))
                for h, v, s in zip(hashes, vectors, sentences, strict=True)
            ],
        )

    def vectors(self, model: str, dimension: int, ids: Sequence[int] | None = None) -> tuple[np.ndarray, Vectors]:
        """(passage ids, vectors) for the given passages, or for all of them."""
        db = self.connection()
        # CROSS JOIN keeps passages the outer loop: given hundreds of ids, SQLite's planner otherwise walks every
        # stored vector of the model for each chunk of ids (a reader applying a 5,000-passage write took seconds).
        query = (
            "SELECT p.id, e.vector FROM passages p CROSS JOIN embeddings e ON e.text_hash = p.text_hash AND e.model = ?"
        )
        if ids is None:
            rows = db.execute(query + " ORDER BY p.id", (model,)).fetchall()
        else:
            rows = []
            for i in range(0, len(ids), _MAX_PARAMETERS):
                chunk = list(ids[i : i + _MAX_PARAMETERS])
                marks = ",".join("?" * len(chunk))
                rows += db.execute(query + f" WHERE p.id IN ({marks})", (model, *chunk)).fetchall()
        id_array = np.array([row[0] for row in rows], dtype=np.int64)
        matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), dimension)
        return id_array, matrix

    def forget_unused_embeddings(self, db: sqlite3.Connection, keep_model: str) -> int:
        """Drop vectors no passage uses, and every other model's; returns how many went."""
        return db.execute(
            "DELETE FROM embeddings WHERE model != ? OR text_hash NOT IN (SELECT text_hash FROM passages)",
            (keep_model,),
        ).rowcount

    # -- feeds and sources ---------------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        """Every followed feed, in URL order."""
        rows = self.connection().execute(f"SELECT {FEED_COLUMNS} FROM feeds ORDER BY url")
        return [Feed(**dict(zip(FEED_KEYS, row, strict=True))) for row in rows]

    def save_feed(self, db: sqlite3.Connection, feed: Feed) -> None:
        """Add a feed or update what its last poll recorded, inside a write transaction."""
        values = feed.model_dump()
        db.execute(
            f"INSERT INTO feeds({FEED_COLUMNS}) VALUES ({', '.join('?' * len(FEED_KEYS))}) ON CONFLICT(url) DO UPDATE"
            " SET " + ", ".join(f"{k} = excluded.{k}" for k in FEED_KEYS if k not in ("url", "added")),
            [values[k] for k in FEED_KEYS],
        )

    def remove_feed(self, db: sqlite3.Connection, url: str) -> bool:
        """Forget a feed and its items inside a write transaction; False when it was not followed."""
        db.execute("DELETE FROM feed_items WHERE feed_url = ?", (url,))
        return db.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount > 0

    def feed_items(self, url: str) -> list[FeedItem]:
        """What is remembered of a feed's items."""
        rows = self.connection().execute(
            "SELECT key, link, entry_hash, article_id, page_etag, page_last_modified FROM feed_items"
            " WHERE feed_url = ? ORDER BY key",
            (url,),
        )
        return [FeedItem(*row) for row in rows]

    def save_feed_items(self, db: sqlite3.Connection, url: str, items: Sequence[FeedItem]) -> None:
        """Remember these items of a feed, inside a write transaction."""
        db.executemany(
            "INSERT OR REPLACE INTO feed_items(feed_url, key, link, entry_hash, article_id, page_etag,"
            " page_last_modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(url, i.key, i.link, i.entry_hash, i.article_id, i.page_etag, i.page_last_modified) for i in items],
        )

    def source_counts(self) -> SourceCounts:
        """Articles and newest ISO date per site (articles not from files), per folder of files, per feed."""
        db = self.connection()
        newest = f"MAX(CASE WHEN {ISO_DATE_SQLITE} THEN published END)"
        sites = db.execute(
            f"SELECT source, COUNT(*), {newest} FROM articles WHERE file IS NULL AND source IS NOT NULL"
            " GROUP BY source ORDER BY COUNT(*) DESC, source"
        ).fetchall()
        # rtrim(file, <every character of file but '/'>) cuts the file name off its path.
        folders = db.execute(
            f"SELECT rtrim(file, replace(file, '/', '')) AS folder, COUNT(*), {newest} FROM articles"
            " WHERE file IS NOT NULL GROUP BY folder ORDER BY folder"
        ).fetchall()
        feeds = db.execute(
            f"SELECT f.url, COUNT(DISTINCT a.id), MAX(CASE WHEN a.{ISO_DATE_SQLITE} THEN a.published END)"
            " FROM feeds f LEFT JOIN feed_items i ON i.feed_url = f.url LEFT JOIN articles a ON a.id = i.article_id"
            " GROUP BY f.url ORDER BY f.url"
        ).fetchall()
        return SourceCounts(
            *([SourceCount(name=n, articles=c, newest=d) for n, c, d in rows] for rows in (sites, folders, feeds))
        )

    # -- lexical leg --------------------------------------------------------------------------------
    def lexical(self, query: str, limit: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, FTS5 BM25 score; higher is better) of the best lexical matches of a query.

        With filters, only passages of the articles they allow: each match is looked up (CROSS JOIN keeps the
        full-text match as the outer loop), so the best `limit` among those articles come back.
        """
        match = fts_match(query)
        if match is None:
            return []
        predicate = article_predicate(filters, "sqlite")
        if predicate is None:
            rows = self.connection().execute(
                "SELECT rowid, -bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            )
        else:
            rows = self.connection().execute(
                "SELECT passages_fts.rowid, -bm25(passages_fts) FROM passages_fts"
                " CROSS JOIN passages p ON p.id = passages_fts.rowid CROSS JOIN articles a ON a.id = p.article_id"
                f" WHERE passages_fts MATCH :match AND {predicate.sql} ORDER BY rank LIMIT :limit",
                {**predicate.params, "match": match, "limit": limit},
            )
        return [(int(r[0]), float(r[1])) for r in rows]

    # -- change log ---------------------------------------------------------------------------------
    def last_change(self) -> int:
        """The number of the last change to the passages (0 for a new index)."""
        row = self.connection().execute("SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'").fetchone()
        return int(row[0]) if row else 0

    def state(self) -> tuple[int, str | None]:
        """The last change's number and the model the vectors are from, in one read."""
        row = (
            self.connection()
            .execute(
                "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'),"
                " (SELECT value FROM meta WHERE key = 'model')"
            )
            .fetchone()
        )
        return int(row[0] or 0), row[1]

    def changes_since(self, seq: int) -> list[LogEntry] | None:
        """Changes after `seq`, or None when the log no longer reaches back that far."""
        db = self.connection()
        first = db.execute("SELECT MIN(seq) FROM vector_log").fetchone()[0]
        if first is not None and first > seq + 1:
            return None
        if first is None and self.last_change() > seq:
            return None
        rows = db.execute("SELECT passage_id, op FROM vector_log WHERE seq > ? ORDER BY seq", (seq,))
        return [LogEntry(*row) for row in rows]

    def trim_log(self, db: sqlite3.Connection, upto: int) -> None:
        """Forget changes a checkpoint already holds."""
        db.execute("DELETE FROM vector_log WHERE seq <= ?", (upto,))

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check."""
        return bool(self.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def fts_match(query: str) -> str | None:
    """A safe FTS5 MATCH expression for a query: every term quoted, so no user text is read as syntax."""
    terms = search_terms(query)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None
