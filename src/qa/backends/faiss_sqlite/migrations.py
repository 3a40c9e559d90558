"""The SQLite schema of an index folder, as numbered steps; `PRAGMA user_version` records the last one applied.

Each step takes the schema from version i to i + 1 and is safe on an index written by a qa that predates the
numbering (version 0), so an old index is brought up to date in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    published TEXT,
    author TEXT,
    source TEXT,
    content_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    file TEXT  -- the file it was read from (absolute path), for --prune and watch; NULL for API uploads
);
CREATE INDEX IF NOT EXISTS articles_by_file ON articles(file);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_article ON passages(article_id, ordinal);
CREATE INDEX IF NOT EXISTS passages_by_hash ON passages(text_hash);
-- One vector per distinct passage text and model: syndicated copies and re-chunked text are embedded once.
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    sentences BLOB,  -- float16, one row per sentence of the text (Embedder.encode_with_spans)
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, content='passages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
-- Every passage insert and delete, in order: readers replay it onto their in-memory FAISS index.
CREATE TABLE IF NOT EXISTS vector_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    passage_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE TRIGGER IF NOT EXISTS passages_added AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
    INSERT INTO vector_log(passage_id, op) VALUES (new.id, 'add');
END;
CREATE TRIGGER IF NOT EXISTS passages_removed AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO vector_log(passage_id, op) VALUES (old.id, 'del');
END;
"""


def _tables(db: sqlite3.Connection) -> None:
    """1: articles, passages, vectors by text hash, the FTS5 index and the change log, with their triggers."""
    for statement in _statements(_TABLES):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """A script's statements, one by one (execute() runs one; executescript() would commit the transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _sentence_vectors(db: sqlite3.Connection) -> None:
    """2: sentence vectors beside each passage vector (indexes from before they were stored lack the column)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(embeddings)")}
    if "sentences" not in columns:
        db.execute("ALTER TABLE embeddings ADD COLUMN sentences BLOB")


_FEEDS = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    added TEXT NOT NULL,
    polled TEXT,
    last_result TEXT,
    etag TEXT,
    last_modified TEXT
);
-- Each item of a feed qa has seen: its key (GUID, else link), a hash of its entry, the article it became and the
-- page's validators, so a poll fetches only new and changed items, conditionally.
CREATE TABLE IF NOT EXISTS feed_items (
    feed_url TEXT NOT NULL REFERENCES feeds(url) ON DELETE CASCADE,
    key TEXT NOT NULL,
    link TEXT,
    entry_hash TEXT NOT NULL,
    article_id TEXT,
    page_etag TEXT,
    page_last_modified TEXT,
    PRIMARY KEY (feed_url, key)
);
CREATE INDEX IF NOT EXISTS feed_items_by_article ON feed_items(article_id);
"""


def _feeds(db: sqlite3.Connection) -> None:
    """3: followed feeds and their items, and each article's origin (JSON: when and how it was fetched)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(articles)")}
    if "origin" not in columns:
        db.execute("ALTER TABLE articles ADD COLUMN origin TEXT")
    for statement in _statements(_FEEDS):
        db.execute(statement)


def _filter_indexes(db: sqlite3.Connection) -> None:
    """4: indexes on the columns date and source filters test (qa.backends.filters)."""
    db.execute("CREATE INDEX IF NOT EXISTS articles_by_published ON articles(published)")
    db.execute("CREATE INDEX IF NOT EXISTS articles_by_source ON articles(source)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_tables, _sentence_vectors, _feeds, _filter_indexes]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Apply the steps this database has not had yet, in one transaction; returns the version reached."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        for step in MIGRATIONS[version:]:
            step(db)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return max(version, SCHEMA_VERSION)
