"""The PostgreSQL back end: articles, passages, pgvector (HNSW) vectors and a BM25 lexical leg in one database.

The API process keeps no state but its model and caches: every query reads the database, so any number of
replicas serve the same data and a write through one is seen by the next query on any other. Writers (ingest
workers on several machines, API replicas) coordinate through the database alone: each article is written
under a transaction-scoped advisory lock on its id, after re-checking its content hash, so concurrent
ingests of the same corpus leave every article exactly once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from qa.backend import Progress
from qa.chunking import ChunkingPolicy, passages_for
from qa.embedding import Embedder, Vectors, load_embedder
from qa.errors import DatabaseUnavailable, IndexMismatch, SchemaVersionMismatch, VectorExtensionMissing
from qa.records import Article, ArticleSummary, Passage
from qa.search import query_terms
from qa.sentences import sentence_spans
from qa.settings import Settings
from qa.store import PassageRow, sentence_matrix

log = logging.getLogger(__name__)

VECTOR_EXTENSION = "vector"
EF_SEARCH = 100  # HNSW candidates per query; at least the depth the dense leg asks for
BM25_K1, BM25_B = 1.2, 0.75
_SCHEMA_LOCK = 7_261_001  # advisory lock key for `qa db init` and the first write's metadata

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
]
SCHEMA_VERSION = len(MIGRATIONS)

# BM25 (k1, b as in Lucene) over the stored tsvectors: document frequencies from the GIN index, corpus size and
# mean length from lexical_stats, term frequencies from each matching passage's positions.
_BM25 = f"""
WITH q AS (
    SELECT DISTINCT lexeme FROM unnest(to_tsvector('english'::regconfig, %(text)s))
), s AS (
    SELECT passages::float8 AS n, total_length::float8 / greatest(passages, 1) AS avgdl FROM lexical_stats
), idf AS (
    SELECT q.lexeme, ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5)) AS w
    FROM q CROSS JOIN s
    CROSS JOIN LATERAL (
        SELECT count(*)::float8 AS df FROM passages WHERE tsv @@ quote_literal(q.lexeme)::tsquery
    ) d
    WHERE d.df > 0
), tsq AS (
    SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query FROM idf
)
SELECT p.id,
       sum(idf.w * t.tf * {BM25_K1 + 1} / (t.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * p.length / s.avgdl))) AS score
FROM tsq, s, passages p
CROSS JOIN LATERAL (SELECT lexeme, cardinality(positions)::float8 AS tf FROM unnest(p.tsv)) t
JOIN idf ON idf.lexeme = t.lexeme
WHERE p.tsv @@ tsq.query
GROUP BY p.id
ORDER BY score DESC, p.id
LIMIT %(k)s
"""


def text_hash(text: str) -> str:
    """Key of a passage's text in the embedding store (the same as the FAISS back end's)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def vector_literal(vector: Vectors) -> str:
    """pgvector's text form of one vector."""
    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).reshape(-1).tolist())) + "]"


def describe(url: str) -> str:
    """Where a connection URL points, without its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database (QA_DATABASE_URL is not a valid connection string)"
    return f"database {parts.get('dbname', '?')!s} on {parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def connect(url: str) -> psycopg.Connection[Any]:
    """One autocommit connection, or DatabaseUnavailable with a one-line reason."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except (psycopg.Error, ValueError) as e:
        raise DatabaseUnavailable(f"cannot connect to {describe(url)}: {_first_line(e)}") from e


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
                f"the pgvector extension ({VECTOR_EXTENSION!r}) is missing from {describe(url)} and cannot be"
                f" created: {_first_line(e)}"
            ) from e
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            before = schema_version(conn)
            if before > SCHEMA_VERSION:
                raise _too_new(url, before)
            for version in range(before, SCHEMA_VERSION):
                conn.execute(MIGRATIONS[version].encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))
        return before, SCHEMA_VERSION


def _too_new(url: str, version: int) -> SchemaVersionMismatch:
    return SchemaVersionMismatch(
        f"the schema in {describe(url)} is version {version}, newer than this qa ({SCHEMA_VERSION}); upgrade qa"
    )


@contextmanager
def temporary_database(url: str, prefix: str = "qa_tmp") -> Iterator[str]:
    """A new, empty database beside the one `url` names (needs CREATEDB), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with connect(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with connect(url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class PostgresBackend:
    """Articles, passages, vectors and the lexical index in PostgreSQL; a connection pool per process."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, *, rebuilding: bool = False) -> None:
        if not settings.database_url:
            raise DatabaseUnavailable("QA_BACKEND=postgres needs QA_DATABASE_URL (postgresql://user@host/db)")
        self.settings = settings
        self.url = settings.database_url
        self.policy = ChunkingPolicy(settings.chunk_tokens, settings.chunk_overlap)
        self._embedder = embedder
        self._lock = threading.Lock()
        self._recorded_dimension: int | None = None
        with connect(self.url) as conn:
            version = schema_version(conn)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if version else {}
        if version > SCHEMA_VERSION:
            raise _too_new(self.url, version)
        if version < SCHEMA_VERSION:
            raise SchemaVersionMismatch(
                f"the schema in {describe(self.url)} is version {version}, this qa needs {SCHEMA_VERSION}:"
                " run `qa db init`"
            )
        wanted = embedder.name if embedder else settings.model
        if meta.get("model") and meta["model"] != wanted and not rebuilding:
            raise IndexMismatch(
                f"{describe(self.url)} was built with model {meta['model']!r}, not {wanted!r}:"
                f" set QA_MODEL={meta['model']} or run `qa rebuild` to re-embed with {wanted!r}"
            )
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=settings.database_pool_size,
            kwargs={"connect_timeout": 5},
            timeout=30,
            name="qa",
            open=True,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction (committed on success); lost connections become one-line errors."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as e:
            raise DatabaseUnavailable(f"lost {describe(self.url)}: {_first_line(e)}") from e

    # -- model and metadata -------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = load_embedder(self.settings.model)
        return self._embedder

    @property
    def meta(self) -> dict[str, str]:
        """Model, dimension and chunking the database was built with (empty before the first write)."""
        with self._conn() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def _dimension(self) -> int:
        """The recorded vector dimension (remembered once recorded: only `qa rebuild` with a new model changes it)."""
        if self._recorded_dimension is None:
            recorded = self.meta.get("dimension")
            if not recorded:
                return self.embedder.dimension
            self._recorded_dimension = int(recorded)
        return self._recorded_dimension

    def _ensure_meta(self) -> None:
        """Record model, dimension and chunking on the first write and create the HNSW index; check them later."""
        meta = self.meta
        if not meta:
            with self._conn() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if not conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
                    self._record_meta(conn)
            meta = self.meta
        if meta.get("chunking") != self.policy.describe():
            raise IndexMismatch(
                f"the database was chunked as {meta.get('chunking')!r}, the settings ask for"
                f" {self.policy.describe()!r}: run `qa rebuild` to re-chunk it"
            )

    def _record_meta(self, conn: psycopg.Connection[Any]) -> None:
        dimension = self.embedder.dimension
        values = {
            "model": self.embedder.name,
            "dimension": str(dimension),
            "chunking": self.policy.describe(),
            "chunk_tokens": str(self.policy.max_tokens),
            "chunk_overlap": str(self.policy.overlap),
        }
        conn.cursor().executemany(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )
        conn.execute("DROP INDEX IF EXISTS passages_hnsw")
        conn.execute(
            f"CREATE INDEX passages_hnsw ON passages USING hnsw ((embedding::vector({dimension})) vector_ip_ops)"
        )

    # -- retrieval ----------------------------------------------------------------------------------
    def dense(self, query_vector: Vectors, k: int) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages, from the HNSW index."""
        dimension = self._dimension()
        with self._conn() as conn:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(EF_SEARCH, k)),))
            rows = conn.execute(
                f"SELECT id, -(embedding::vector({dimension}) <#> %s::vector({dimension})) FROM passages"
                f" ORDER BY embedding::vector({dimension}) <#> %s::vector({dimension}) LIMIT %s",
                (vector_literal(query_vector), vector_literal(query_vector), k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def similarity(self, query_vector: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of these passages (missing ones left out)."""
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, -(embedding <#> %s::vector) FROM passages WHERE id = ANY(%s)",
                (vector_literal(query_vector), ids),
            ).fetchall()
        return {int(i): float(s) for i, s in rows}

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        """(passage id, BM25 score) of the k best matches; user text only ever reaches SQL as a parameter."""
        terms = query_terms(query)
        if not terms:
            return []
        with self._conn() as conn:
            rows = conn.execute(_BM25, {"text": " ".join(terms), "k": k}).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                'SELECT p.id, p.article_id, a.title, a.url, a.published, p.start, p."end", p.text,'
                " e.sentences, vector_dims(p.embedding)"
                " FROM passages p JOIN articles a ON a.id = p.article_id"
                " LEFT JOIN embeddings e ON e.model = %s AND e.text_hash = p.text_hash"
                " WHERE p.id = ANY(%s)",
                (self.embedder.name, list(ids)),
            ).fetchall()
        return {
            int(pid): PassageRow(int(pid), article, title, url, published, start, end, text, sentence_matrix(sv, dim))
            for pid, article, title, url, published, start, end, text, sv, dim in rows
        }

    def passage_texts(self) -> list[str]:
        """Every passage's text."""
        with self._conn() as conn:
            return [row[0] for row in conn.execute("SELECT text FROM passages")]

    # -- articles -----------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT id, title, text, url, published, author, source FROM articles WHERE id = %s", (article_id,)
            ).fetchone()
        if row is None:
            return None
        keys = ("id", "title", "text", "url", "published", "author", "source")
        return Article(**dict(zip(keys, row, strict=True)))

    def summaries(self, offset: int, limit: int) -> tuple[int, list[ArticleSummary]]:
        """A page of articles without their text, most recently published first, and the total."""
        with self._conn() as conn:
            total = conn.execute("SELECT count(*) FROM articles").fetchone()
            rows = conn.execute(
                "SELECT a.id, a.title, a.url, a.published, a.author, a.source,"
                " (SELECT count(*) FROM passages p WHERE p.article_id = a.id)"
                " FROM articles a ORDER BY a.published DESC NULLS LAST, a.id LIMIT %s OFFSET %s",
                (limit, offset),
            ).fetchall()
        keys = ("id", "title", "url", "published", "author", "source", "passages")
        return int(total[0]) if total else 0, [ArticleSummary(**dict(zip(keys, row, strict=True))) for row in rows]

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        with self._conn() as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from, for articles read from files."""
        with self._conn() as conn:
            return dict(conn.execute("SELECT id, file FROM articles WHERE file IS NOT NULL").fetchall())

    # -- writing ------------------------------------------------------------------------------------
    def upsert(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        batch: int = 32,
        files: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Add new articles and replace changed ones; returns each id's status (added/updated/unchanged).

        Safe to run from several processes or machines at once on overlapping articles.
        """
        self._ensure_meta()
        statuses: dict[str, str] = {}
        pending: dict[str, Article] = {}
        for article in articles:
            pending.pop(article.id, None)
            pending[article.id] = article
            if len(pending) >= batch:
                statuses.update(self._write_batch(list(pending.values()), files or {}, progress))
                pending = {}
        if pending:
            statuses.update(self._write_batch(list(pending.values()), files or {}, progress))
        return statuses

    def _write_batch(
        self, articles: Sequence[Article], files: Mapping[str, str], progress: Progress | None, force: bool = False
    ) -> dict[str, str]:
        hashes = {a.id: a.content_hash() for a in articles}
        with self._conn() as conn:
            known = dict(
                conn.execute(
                    "SELECT id, content_hash FROM articles WHERE id = ANY(%s)", ([a.id for a in articles],)
                ).fetchall()
            )
        changed = [a for a in articles if force or known.get(a.id) != hashes[a.id]]
        chunked = {a.id: passages_for(a, self.policy, self.embedder.count_tokens) for a in changed}
        self._embed_missing({text_hash(p.text): p.text for ps in chunked.values() for p in ps})
        statuses: dict[str, str] = {}
        with self._conn() as conn:
            # Locks in id order, so two workers writing overlapping batches never deadlock.
            for article_id in sorted(hashes):
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (article_id,))
            now = dict(
                conn.execute(
                    "SELECT id, content_hash FROM articles WHERE id = ANY(%s)", ([a.id for a in articles],)
                ).fetchall()
            )
            for article in articles:
                file = files.get(article.id)
                if article.id in chunked and (force or now.get(article.id) != hashes[article.id]):
                    self._save_article(conn, article, chunked[article.id], file)
                    statuses[article.id] = "updated" if article.id in now else "added"
                else:
                    statuses[article.id] = "unchanged"
                    if file is not None:
                        conn.execute(
                            "UPDATE articles SET file = %s WHERE id = %s AND file IS DISTINCT FROM %s",
                            (file, article.id, file),
                        )
        if progress is not None:
            progress.update(len(articles))
        return statuses

    def _save_article(
        self, conn: psycopg.Connection[Any], article: Article, passages: Sequence[Passage], file: str | None
    ) -> None:
        conn.execute("DELETE FROM passages WHERE article_id = %s", (article.id,))
        conn.execute(
            "INSERT INTO articles (id, title, text, url, published, author, source, content_hash, updated_at, file)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s) ON CONFLICT (id) DO UPDATE SET"
            " title = excluded.title, text = excluded.text, url = excluded.url, published = excluded.published,"
            " author = excluded.author, source = excluded.source, content_hash = excluded.content_hash,"
            " updated_at = excluded.updated_at, file = excluded.file",
            (
                article.id,
                article.title,
                article.text,
                article.url,
                article.published,
                article.author,
                article.source,
                article.content_hash(),
                file,
            ),
        )
        if passages:
            rows = [
                (p.article_id, p.ordinal, p.start, p.end, p.text, text_hash(p.text), len(re.findall(r"\w+", p.text)))
                for p in passages
            ]
            conn.execute(
                'INSERT INTO passages (article_id, ordinal, start, "end", text, text_hash, length, embedding)'
                " SELECT r.article_id, r.ordinal, r.start, r.end_, r.text, r.text_hash, r.length, e.vector"
                " FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::int[])"
                " WITH ORDINALITY AS r(article_id, ordinal, start, end_, text, text_hash, length, n)"
                " JOIN embeddings e ON e.model = %s AND e.text_hash = r.text_hash ORDER BY r.n",
                (*(list(column) for column in zip(*rows, strict=True)), self.embedder.name),
            )

    def _embed_missing(self, texts_by_hash: dict[str, str]) -> None:
        """Embed and store the passage texts this model has not embedded yet (by any worker)."""
        if not texts_by_hash:
            return
        with self._conn() as conn:
            have = {
                row[0]
                for row in conn.execute(
                    "SELECT text_hash FROM embeddings WHERE model = %s AND text_hash = ANY(%s)"
                    " AND sentences IS NOT NULL",
                    (self.embedder.name, list(texts_by_hash)),
                )
            }
        missing = sorted(set(texts_by_hash) - have)
        if not missing:
            return
        texts = [texts_by_hash[h] for h in missing]
        vectors, sentences = self.embedder.encode_with_spans(texts, [sentence_spans(t) for t in texts])
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings (model, text_hash, vector, sentences) VALUES (%s, %s, %s::vector, %s)"
                " ON CONFLICT (model, text_hash) DO UPDATE SET sentences = EXCLUDED.sentences",
                [
                    (self.embedder.name, h, vector_literal(v), s.astype(np.float16).tobytes())
                    for h, v, s in zip(missing, vectors, sentences, strict=True)
                ],
            )

    def delete(self, article_id: str) -> bool:
        """Remove an article and its passages; False when there was none with this id."""
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (article_id,))
            conn.execute("DELETE FROM passages WHERE article_id = %s", (article_id,))
            return conn.execute("DELETE FROM articles WHERE id = %s", (article_id,)).rowcount > 0

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk (chunking changed) or re-embed (model changed) from the stored articles; returns passages."""
        meta = self.meta
        if meta and meta.get("chunking") != self.policy.describe():
            with self._conn() as conn:
                ids = [row[0] for row in conn.execute("SELECT id FROM articles ORDER BY id")]
            if progress is not None:
                progress.total = len(ids)
            files = self.files()
            for start in range(0, len(ids), 32):
                found = [self.article(i) for i in ids[start : start + 32]]
                self._write_batch([a for a in found if a is not None], files, progress, force=True)
        elif meta.get("model") != self.embedder.name:
            with self._conn() as conn:
                texts = dict(conn.execute("SELECT DISTINCT text_hash, text FROM passages").fetchall())
            self._embed_missing(texts)
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute("DROP INDEX IF EXISTS passages_hnsw")
            conn.execute(
                "UPDATE passages p SET embedding = e.vector FROM embeddings e"
                " WHERE e.model = %s AND e.text_hash = p.text_hash",
                (self.embedder.name,),
            )
            conn.execute(
                "DELETE FROM embeddings WHERE model <> %s OR text_hash NOT IN (SELECT text_hash FROM passages)",
                (self.embedder.name,),
            )
            self._record_meta(conn)
        self._recorded_dimension = None
        return self.counts()[1]
