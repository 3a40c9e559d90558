"""The PostgreSQL back end: articles, passages, pgvector (HNSW) vectors and a BM25 lexical leg in one database.

The API process keeps no state but its model and caches: every query reads the database, so any number of
replicas serve the same data and a write through one is seen by the next query on any other. Writers (ingest
workers on several machines, API replicas) coordinate through the database alone: each article is written
under a transaction-scoped advisory lock on its id, after re-checking its content hash, so concurrent
ingests of the same corpus leave every article exactly once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from qa.backends.base import (
    ARTICLE_COLUMNS,
    ISO_DATE_POSTGRES,
    ChunkedArticle,
    FeedItem,
    PassageRow,
    SourceCounts,
    Stored,
    article_from_row,
    origin_json,
    sentence_blob,
    sentence_matrix,
)
from qa.backends.filters import article_predicate
from qa.backends.postgres.connection import connect, database_label, first_line
from qa.backends.postgres.migrations import SCHEMA_LOCK, SCHEMA_VERSION, schema_version, too_new
from qa.embedding import Vectors
from qa.errors import DatabaseUnavailable, SchemaVersionMismatch
from qa.records import Article, ArticleSummary, Feed, Filters, SourceCount
from qa.settings import Settings
from qa.text.words import search_terms

log = logging.getLogger(__name__)

EF_SEARCH = 100  # HNSW candidates per query; at least the depth the dense leg asks for
EXACT_FILTERED = 20_000  # a filter matching at most this many passages is searched exactly, over just them
BM25_K1, BM25_B = 1.2, 0.75
_FEED_KEYS = ("url", "title", "added", "polled", "last_result", "etag", "last_modified")
_FEED_COLUMNS = ", ".join(_FEED_KEYS)

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
FROM tsq, s, passages p{{articles}}
CROSS JOIN LATERAL (SELECT lexeme, cardinality(positions)::float8 AS tf FROM unnest(p.tsv)) t
JOIN idf ON idf.lexeme = t.lexeme
WHERE p.tsv @@ tsq.query{{where}}
GROUP BY p.id
ORDER BY score DESC, p.id
LIMIT %(k)s
"""


def vector_literal(vector: Vectors) -> str:
    """pgvector's text form of one vector."""
    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).reshape(-1).tolist())) + "]"


class PostgresBackend:
    """Articles, passages, vectors and the lexical index in PostgreSQL; a connection pool per process."""

    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise DatabaseUnavailable("QA_BACKEND=postgres needs QA_DATABASE_URL (postgresql://user@host/db)")
        self.settings = settings
        self.url = settings.database_url
        self._lock = threading.Lock()
        with connect(self.url) as conn:
            version = schema_version(conn)
            self._recorded = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if version else {}
        if version > SCHEMA_VERSION:
            raise too_new(self.url, version)
        if version < SCHEMA_VERSION:
            raise SchemaVersionMismatch(
                f"the schema in {self.label} is version {version}, this qa needs {SCHEMA_VERSION}: run `qa db init`"
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

    @property
    def label(self) -> str:
        """Where the data lives, without the password."""
        return database_label(self.url)

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
            raise DatabaseUnavailable(f"lost {self.label}: {first_line(e)}") from e

    # -- what the stored vectors were made with -----------------------------------------------------
    def meta(self) -> dict[str, str]:
        """Model, dimension and chunking the database was built with (empty before the first write)."""
        with self._conn() as conn:
            recorded = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self._recorded = recorded
        return recorded

    def recorded_model(self) -> str | None:
        """The model the stored vectors come from, as last read (only `qa rebuild` changes it)."""
        return self._known_meta().get("model")

    def _dimension(self) -> int:
        """The recorded vector dimension (0 while nothing is stored)."""
        return int(self._known_meta().get("dimension") or 0)

    def _known_meta(self) -> dict[str, str]:
        """The settings as last read; read again while none were recorded (another process may write first)."""
        return self._recorded or self.meta()

    def ensure_meta(self, values: Mapping[str, str]) -> dict[str, str]:
        """Record the settings and create the HNSW index on the first write (one worker does it); returns them."""
        if not self._recorded:
            with self._conn() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if not conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
                    self._record_meta(conn, values)
        return self.meta()

    def _record_meta(self, conn: psycopg.Connection[Any], values: Mapping[str, str]) -> None:
        dimension = int(values["dimension"])
        conn.cursor().executemany(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )
        conn.execute("DROP INDEX IF EXISTS passages_hnsw")
        conn.execute(
            f"CREATE INDEX passages_hnsw ON passages USING hnsw ((embedding::vector({dimension})) vector_ip_ops)"
        )

    # -- retrieval ----------------------------------------------------------------------------------
    def dense(self, query_vector: Vectors, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages, from the HNSW index.

        With filters: when at most EXACT_FILTERED passages match, their similarities are computed exactly;
        otherwise the HNSW scan goes on past passages the filters refuse (pgvector's iterative index scans) and
        an exact search completes it if it still comes back short.
        """
        dimension = self._dimension()
        if not dimension:
            return []
        predicate = article_predicate(filters, "postgres")
        vector = vector_literal(query_vector)
        typed = f"p.embedding::vector({dimension})"
        with self._conn() as conn:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(EF_SEARCH, k)),))
            if predicate is None:
                rows = conn.execute(
                    f"SELECT p.id, -({typed} <#> %(q)s::vector({dimension})) FROM passages p"
                    f" ORDER BY {typed} <#> %(q)s::vector({dimension}) LIMIT %(k)s",
                    {"q": vector, "k": k},
                ).fetchall()
                return [(int(i), float(s)) for i, s in rows]
            params = {**predicate.params, "q": vector, "k": k, "few": EXACT_FILTERED + 1}
            matching = f"FROM passages p JOIN articles a ON a.id = p.article_id WHERE {predicate.sql}"
            few = conn.execute(f"SELECT count(*) FROM (SELECT 1 {matching} LIMIT %(few)s) m", params).fetchone()
            count = int(few[0]) if few else 0
            rows = []
            if count > EXACT_FILTERED:
                conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
                rows = conn.execute(
                    f"SELECT p.id, -({typed} <#> %(q)s::vector({dimension})) {matching}"
                    f" ORDER BY {typed} <#> %(q)s::vector({dimension}) LIMIT %(k)s",
                    params,
                ).fetchall()
            if len(rows) < min(k, count):
                # MATERIALIZED: the matching passages first, then their exact similarities (no index scan).
                rows = conn.execute(
                    f"WITH m AS MATERIALIZED (SELECT p.id, p.embedding {matching})"
                    f" SELECT id, -(embedding::vector({dimension}) <#> %(q)s::vector({dimension})) AS s FROM m"
                    " ORDER BY s DESC LIMIT %(k)s",
                    params,
                ).fetchall()
        # relaxed_order may return the k nearest slightly out of order
        return sorted(((int(i), float(s)) for i, s in rows), key=lambda r: r[1], reverse=True)

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

    def lexical(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, BM25 score) of the k best matches the filters allow; user text only reaches SQL as a
        parameter. Document frequencies stay those of the whole corpus."""
        terms = search_terms(query)
        if not terms:
            return []
        predicate = article_predicate(filters, "postgres")
        sql = _BM25.format(
            articles=" JOIN articles a ON a.id = p.article_id" if predicate else "",
            where=f" AND {predicate.sql}" if predicate else "",
        )
        with self._conn() as conn:
            rows = conn.execute(sql, {**(predicate.params if predicate else {}), "text": " ".join(terms), "k": k})
            return [(int(i), float(s)) for i, s in rows.fetchall()]

    def published_range(self) -> tuple[str, str] | None:
        """The oldest and newest ISO publication dates (YYYY-MM-DD) of the articles, from the published index."""
        ends = []
        with self._conn() as conn:
            for order in ("ASC", "DESC"):
                row = conn.execute(
                    f"SELECT left(published, 10) FROM articles WHERE {ISO_DATE_POSTGRES}"
                    f' ORDER BY published COLLATE "C" {order} LIMIT 1'
                ).fetchone()
                if row is None:
                    return None
                ends.append(str(row[0]))
        return ends[0], ends[1]

    def passage_ids(self, article_id: str) -> list[int]:
        """Ids of one article's passages, in order."""
        with self._conn() as conn:
            rows = conn.execute("SELECT id FROM passages WHERE article_id = %s ORDER BY ordinal", (article_id,))
            return [int(row[0]) for row in rows]

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                'SELECT p.id, p.article_id, a.title, a.url, a.published, p.start, p."end", p.text,'
                " e.sentences, vector_dims(p.embedding), a.source"
                " FROM passages p JOIN articles a ON a.id = p.article_id"
                " LEFT JOIN embeddings e ON e.model = %s AND e.text_hash = p.text_hash"
                " WHERE p.id = ANY(%s)",
                (self.recorded_model(), list(ids)),
            ).fetchall()
        return {
            int(pid): PassageRow(
                int(pid), article, title, url, published, start, end, text, sentence_matrix(sv, dim), source
            )
            for pid, article, title, url, published, start, end, text, sv, dim, source in rows
        }

    def passage_texts(self) -> list[tuple[str, str]]:
        """(text hash, text) of every stored passage."""
        with self._conn() as conn:
            return [(row[0], row[1]) for row in conn.execute("SELECT text_hash, text FROM passages")]

    # -- articles -----------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        with self._conn() as conn:
            row = conn.execute(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = %s", (article_id,)).fetchone()
        return None if row is None else article_from_row(row)

    def summaries(self, offset: int, limit: int, filters: Filters | None = None) -> tuple[int, list[ArticleSummary]]:
        """A page of the articles the filters allow without their text, newest first, and their total."""
        predicate = article_predicate(filters, "postgres")
        where = f" WHERE {predicate.sql}" if predicate else ""
        params = {**(predicate.params if predicate else {}), "limit": limit, "offset": offset}
        with self._conn() as conn:
            total = conn.execute(f"SELECT count(*) FROM articles a{where}", params).fetchone()
            rows = conn.execute(
                "SELECT a.id, a.title, a.url, a.published, a.author, a.source,"
                " (SELECT count(*) FROM passages p WHERE p.article_id = a.id)"
                f" FROM articles a{where} ORDER BY a.published DESC NULLS LAST, a.id LIMIT %(limit)s OFFSET %(offset)s",
                params,
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

    def articles(self) -> Iterator[Article]:
        """Every stored article, in id order."""
        with self._conn() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM articles ORDER BY id")]
        for article_id in ids:
            found = self.article(article_id)
            if found is not None:
                yield found

    # -- writing ------------------------------------------------------------------------------------
    def writing(self) -> AbstractContextManager[None]:
        """Nothing to hold: writers coordinate per article, through advisory locks inside each transaction."""
        return nullcontext()

    def stored(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The content hash and file of each of these articles that exists."""
        with self._conn() as conn:
            rows = conn.execute("SELECT id, content_hash, file FROM articles WHERE id = ANY(%s)", (list(ids),))
            return {article_id: Stored(content_hash, file) for article_id, content_hash, file in rows}

    def missing_embeddings(self, model: str, text_hashes: Set[str]) -> set[str]:
        """Which passage-text hashes have no stored vectors (passage and sentences) for this model, by any worker."""
        if not text_hashes:
            return set()
        with self._conn() as conn:
            have = {
                row[0]
                for row in conn.execute(
                    "SELECT text_hash FROM embeddings WHERE model = %s AND text_hash = ANY(%s)"
                    " AND sentences IS NOT NULL",
                    (model, list(text_hashes)),
                )
            }
        return set(text_hashes) - have

    def save_embeddings(
        self, model: str, text_hashes: Sequence[str], vectors: Vectors, sentences: Sequence[Vectors]
    ) -> None:
        """Store passage and sentence vectors by passage-text hash."""
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings (model, text_hash, vector, sentences) VALUES (%s, %s, %s::vector, %s)"
                " ON CONFLICT (model, text_hash) DO UPDATE SET sentences = EXCLUDED.sentences",
                [
                    (model, h, vector_literal(v), sentence_blob(s))
                    for h, v, s in zip(text_hashes, vectors, sentences, strict=True)
                ],
            )

    def save_articles(
        self, chunked: Sequence[ChunkedArticle], files: Mapping[str, str], model: str, *, force: bool = False
    ) -> dict[str, str]:
        """Write each article whose stored content differs (all, with `force`), in one transaction.

        Safe from several processes or machines at once on overlapping articles: each article is written under
        an advisory lock on its id, after re-reading its content hash.
        """
        statuses: dict[str, str] = {}
        ids = [c.article.id for c in chunked]
        with self._conn() as conn:
            # Locks in id order, so two workers writing overlapping batches never deadlock.
            for article_id in sorted(ids):
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (article_id,))
            known = dict(conn.execute("SELECT id, content_hash FROM articles WHERE id = ANY(%s)", (ids,)).fetchall())
            for item in chunked:
                article, file = item.article, files.get(item.article.id)
                if not force and known.get(article.id) == article.content_hash():
                    statuses[article.id] = "unchanged"
                    if file is not None:
                        self._set_file(conn, article.id, file)
                    continue
                self._save_article(conn, item, file, model)
                statuses[article.id] = "updated" if article.id in known else "added"
        return statuses

    def set_files(self, files: Mapping[str, str]) -> None:
        """Record which file each (unchanged) article now comes from."""
        with self._conn() as conn:
            for article_id, file in files.items():
                self._set_file(conn, article_id, file)

    @staticmethod
    def _set_file(conn: psycopg.Connection[Any], article_id: str, file: str) -> None:
        conn.execute(
            "UPDATE articles SET file = %s WHERE id = %s AND file IS DISTINCT FROM %s", (file, article_id, file)
        )

    @staticmethod
    def _save_article(conn: psycopg.Connection[Any], item: ChunkedArticle, file: str | None, model: str) -> None:
        article = item.article
        conn.execute("DELETE FROM passages WHERE article_id = %s", (article.id,))
        conn.execute(
            "INSERT INTO articles (id, title, text, url, published, author, source, content_hash, updated_at, file,"
            " origin) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " title = excluded.title, text = excluded.text, url = excluded.url, published = excluded.published,"
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
                file,
                origin_json(article),
            ),
        )
        if item.passages:
            rows = [
                (p.article_id, p.ordinal, p.start, p.end, p.text, h, len(re.findall(r"\w+", p.text)))
                for p, h in zip(item.passages, item.text_hashes, strict=True)
            ]
            conn.execute(
                'INSERT INTO passages (article_id, ordinal, start, "end", text, text_hash, length, embedding)'
                " SELECT r.article_id, r.ordinal, r.start, r.end_, r.text, r.text_hash, r.length, e.vector"
                " FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::int[])"
                " WITH ORDINALITY AS r(article_id, ordinal, start, end_, text, text_hash, length, n)"
                # LEFT JOIN: a passage whose vector is missing fails the NOT NULL constraint (the whole write is
                # refused) instead of silently vanishing from the insert.
                " LEFT JOIN embeddings e ON e.model = %s AND e.text_hash = r.text_hash ORDER BY r.n",
                (*(list(column) for column in zip(*rows, strict=True)), model),
            )

    def delete(self, article_id: str) -> bool:
        """Remove an article and its passages; False when there was none with this id."""
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (article_id,))
            conn.execute("DELETE FROM passages WHERE article_id = %s", (article_id,))
            return conn.execute("DELETE FROM articles WHERE id = %s", (article_id,)).rowcount > 0

    # -- feeds and sources ---------------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        """Every followed feed, in URL order."""
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY url").fetchall()
        return [Feed(**dict(zip(_FEED_KEYS, row, strict=True))) for row in rows]

    def save_feed(self, feed: Feed) -> None:
        """Add a feed or record its latest poll."""
        values = feed.model_dump()
        updates = ", ".join(f"{k} = excluded.{k}" for k in _FEED_KEYS if k not in ("url", "added"))
        with self._conn() as conn:
            conn.execute(
                f"INSERT INTO feeds ({_FEED_COLUMNS}) VALUES ({', '.join(['%s'] * len(_FEED_KEYS))})"
                f" ON CONFLICT (url) DO UPDATE SET {updates}",
                [values[k] for k in _FEED_KEYS],
            )

    def remove_feed(self, url: str) -> bool:
        """Stop following a feed and forget its items (cascade); False when it was not followed."""
        with self._conn() as conn:
            return conn.execute("DELETE FROM feeds WHERE url = %s", (url,)).rowcount > 0

    def feed_items(self, url: str) -> list[FeedItem]:
        """What is remembered of a feed's items."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT key, link, entry_hash, article_id, page_etag, page_last_modified FROM feed_items"
                " WHERE feed_url = %s ORDER BY key",
                (url,),
            ).fetchall()
        return [FeedItem(*row) for row in rows]

    def save_feed_items(self, url: str, items: Sequence[FeedItem]) -> None:
        """Remember these items of a feed."""
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO feed_items (feed_url, key, link, entry_hash, article_id, page_etag, page_last_modified)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (feed_url, key) DO UPDATE SET link = excluded.link,"
                " entry_hash = excluded.entry_hash, article_id = excluded.article_id,"
                " page_etag = excluded.page_etag, page_last_modified = excluded.page_last_modified",
                [(url, i.key, i.link, i.entry_hash, i.article_id, i.page_etag, i.page_last_modified) for i in items],
            )

    def source_counts(self) -> SourceCounts:
        """Articles and newest ISO date per site (articles not from files), per folder of files, per feed."""
        newest = f"max(CASE WHEN {ISO_DATE_POSTGRES} THEN published END)"
        with self._conn() as conn:
            sites = conn.execute(
                f"SELECT source, count(*), {newest} FROM articles WHERE file IS NULL AND source IS NOT NULL"
                " GROUP BY source ORDER BY count(*) DESC, source"
            ).fetchall()
            folders = conn.execute(
                f"SELECT regexp_replace(file, '[^/]*$', '') AS folder, count(*), {newest} FROM articles"
                " WHERE file IS NOT NULL GROUP BY folder ORDER BY folder"
            ).fetchall()
            feeds = conn.execute(
                f"SELECT f.url, count(DISTINCT a.id), max(CASE WHEN a.{ISO_DATE_POSTGRES} THEN a.published END)"
                " FROM feeds f LEFT JOIN feed_items i ON i.feed_url = f.url LEFT JOIN articles a ON a.id = i.article_id"
                " GROUP BY f.url ORDER BY f.url"
            ).fetchall()
        counts = [
            [SourceCount(name=n, articles=int(c), newest=d) for n, c, d in rows] for rows in (sites, folders, feeds)
        ]
        return SourceCounts(*counts)

    def finish_rebuild(self, values: Mapping[str, str]) -> int:
        """Point every passage at the new model's vectors, drop unused ones, record the settings, re-index."""
        model = values["model"]
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute("DROP INDEX IF EXISTS passages_hnsw")
            conn.execute(
                "UPDATE passages p SET embedding = e.vector FROM embeddings e"
                " WHERE e.model = %s AND e.text_hash = p.text_hash",
                (model,),
            )
            conn.execute(
                "DELETE FROM embeddings WHERE model <> %s OR text_hash NOT IN (SELECT text_hash FROM passages)",
                (model,),
            )
            self._record_meta(conn, values)
        self.meta()
        return self.counts()[1]
