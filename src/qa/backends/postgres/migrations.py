"""The PostgreSQL schema as numbered steps (`qa db init` applies the ones a database has not had yet)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from qa.backends.postgres.connection import connect, database_label, first_line
from qa.errors import SchemaVersionMismatch, VectorExtensionMissing

VECTOR_EXTENSION = "vector"
SCHEMA_LOCK = 7_261_001  # advisory lock key for `qa db init` and the first write's metadata

# Each entry migrates the schema from version i to i + 1; the schema's version is the length of this list.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE articles (
        id text PRIMARY KEY,
        title text NOT NULL,
        text text NOT NULL,
        url text,
        published text,
        author text,
        source text,
        content_hash text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        file text
    );
    CREATE INDEX articles_by_file ON articles (file);
    CREATE INDEX articles_by_published ON articles (published DESC NULLS LAST, id);
    CREATE TABLE passages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        article_id text NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
        ordinal integer NOT NULL,
        start integer NOT NULL,
        "end" integer NOT NULL,
        text text NOT NULL,
        text_hash text NOT NULL,
        length integer NOT NULL,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
        embedding vector NOT NULL
    );
    CREATE INDEX passages_by_article ON passages (article_id, ordinal);
    CREATE INDEX passages_by_hash ON passages (text_hash);
    CREATE INDEX passages_tsv ON passages USING gin (tsv);
    -- One vector per distinct passage text and model: identical text is embedded once, re-ingest never re-embeds.
    CREATE TABLE embeddings (
        model text NOT NULL,
        text_hash text NOT NULL,
        vector vector NOT NULL,
        PRIMARY KEY (model, text_hash)
    );
    -- Corpus statistics for BM25 (passage count and total length), kept by statement triggers.
    CREATE TABLE lexical_stats (
        id integer PRIMARY KEY CHECK (id = 1),
        passages bigint NOT NULL,
        total_length bigint NOT NULL
    );
    INSERT INTO lexical_stats VALUES (1, 0, 0);
    CREATE FUNCTION qa_passages_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE lexical_stats SET passages = passages + (SELECT count(*) FROM changed),
            total_length = total_length + (SELECT coalesce(sum(length), 0) FROM changed) WHERE id = 1;
        RETURN NULL;
    END $$;
    CREATE FUNCTION qa_passages_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE lexical_stats SET passages = passages - (SELECT count(*) FROM changed),
            total_length = total_length - (SELECT coalesce(sum(length), 0) FROM changed) WHERE id = 1;
        RETURN NULL;
    END $$;
    CREATE TRIGGER passages_added AFTER INSERT ON passages REFERENCING NEW TABLE AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION qa_passages_added();
    CREATE TRIGGER passages_removed AFTER DELETE ON passages REFERENCING OLD TABLE AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION qa_passages_removed();
    """,
    # 2: sentence vectors (float16, one row per sentence) beside each passage vector, as on FAISS.
    """
    ALTER TABLE embeddings ADD COLUMN sentences bytea;
    """,
    # 3: followed feeds and their items (shared by every replica), and each article's origin (JSON).
    """
    ALTER TABLE articles ADD COLUMN origin text;
    CREATE TABLE feeds (
        url text PRIMARY KEY,
        title text NOT NULL DEFAULT '',
        added text NOT NULL,
        polled text,
        last_result text,
        etag text,
        last_modified text
    );
    CREATE TABLE feed_items (
        feed_url text NOT NULL REFERENCES feeds (url) ON DELETE CASCADE,
        key text NOT NULL,
        link text,
        entry_hash text NOT NULL,
        article_id text,
        page_etag text,
        page_last_modified text,
        PRIMARY KEY (feed_url, key)
    );
    CREATE INDEX feed_items_by_article ON feed_items (article_id);
    """,
    # 4: what date and source filters test (qa.backends.filters): ISO dates compared in byte order ("C").
    """
    CREATE INDEX articles_published_c ON articles ((published COLLATE "C"));
    CREATE INDEX articles_by_source ON articles (source);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version recorded in the database (0: no qa schema yet)."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def init_schema(url: str) -> tuple[int, int]:
    """Create or migrate the schema (idempotent); returns (version before, version after)."""
    with connect(url) as conn:
        try:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(VECTOR_EXTENSION)))
        except psycopg.Error as e:
            raise VectorExtensionMissing(
                f"the pgvector extension ({VECTOR_EXTENSION!r}) is missing from {database_label(url)} and cannot be"
                f" created: {first_line(e)}"
            ) from e
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            before = schema_version(conn)
            if before > SCHEMA_VERSION:
                raise too_new(url, before)
            for version in range(before, SCHEMA_VERSION):
                conn.execute(MIGRATIONS[version].encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))
        return before, SCHEMA_VERSION


def too_new(url: str, version: int) -> SchemaVersionMismatch:
    return SchemaVersionMismatch(
        f"the schema in {database_label(url)} is version {version}, newer than this qa ({SCHEMA_VERSION}); upgrade qa"
    )
