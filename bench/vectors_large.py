"""Flat against HNSW (float32 and compact) on synthetic clustered 384-dim vectors: build, memory, latency, recall@10.

    python bench/vectors_large.py                 # 1,000,000 vectors (the README's table)
    python bench/vectors_large.py --n 100000      # smaller, to estimate

The vectors go through qa's own VectorIndex, with the type forced, so the figures are those of the product's code.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from qa.backends.faiss_sqlite.vectors import Storage, VectorIndex, VectorOptions

DIMENSION = 384
K = 10


def unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to length 1."""
    scaled: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return scaled


class Corpus:
    """Sentence-embedding-like vectors: a shared direction, Zipf-sized topics, sub-topics, and per-passage noise."""

    def __init__(self, seed: int, topics: int = 2_000, subtopics: int = 20) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.mean = unit(rng.standard_normal((1, DIMENSION), dtype=np.float32))
        self.topics = unit(rng.standard_normal((topics, DIMENSION), dtype=np.float32))
        self.subtopics = unit(rng.standard_normal((topics * subtopics, DIMENSION), dtype=np.float32))
        weights = 1.0 / np.arange(1, topics + 1) ** 0.8  # a few large topics, a long tail of small ones
        self.weights = weights / weights.sum()
        self.per_topic = subtopics

    def sample(self, n: int) -> npt.NDArray[np.float32]:
        """n unit vectors: 0.35 shared direction + 0.6 topic + 0.5 sub-topic + 0.55 noise, then normalised."""
        out = np.empty((n, DIMENSION), dtype=np.float32)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            topic = self.rng.choice(len(self.topics), size=m, p=self.weights)
            sub = topic * self.per_topic + self.rng.integers(0, self.per_topic, size=m)
            noise = unit(self.rng.standard_normal((m, DIMENSION), dtype=np.float32))
            mix = 0.35 * self.mean + 0.6 * self.topics[topic] + 0.5 * self.subtopics[sub] + 0.55 * noise
            out[start : start + m] = unit(mix)
        return out


def rss_mib() -> float:
    """Resident memory of this process now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def exact_top(base: npt.NDArray[np.float32], queries: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Exact top-K ids (0-based) by brute force in batches."""
    flat = faiss.IndexFlatIP(DIMENSION)
    flat.add(base)
    _, ids = flat.search(queries, K)
    return ids.astype(np.int64)


def timed_queries(
    index: VectorIndex, queries: npt.NDArray[np.float32], truth: npt.NDArray[np.int64]
) -> dict[str, float]:
    """p50/p95 single-query latency (ms) and recall@10 against exact search."""
    times, hits = [], 0
    for q, true in zip(queries, truth, strict=True):
        start = time.perf_counter()
        found = index.search(q, K)
        times.append(time.perf_counter() - start)
        hits += len({i - 1 for i, _ in found} & set(true.tolist()))  # passage ids are 1-based here
    ms = np.array(times) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "recall": hits / (K * len(truth))}


def build(options: VectorOptions, base: npt.NDArray[np.float32]) -> tuple[VectorIndex, float, float, int]:
    """(index, build seconds, RSS growth MiB, bytes on disk)."""
    before = rss_mib()
    start = time.perf_counter()
    index = VectorIndex(DIMENSION, options)
    index.add(np.arange(1, len(base) + 1, dtype=np.int64), base)
    seconds = time.perf_counter() - start
    grown = rss_mib() - before
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.faiss"
        index.save(path)
        size = path.stat().st_size
    return index, seconds, grown, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=1_000, help="timed queries (flat at 1M uses a fifth)")
    parser.add_argument("--m", type=int, default=VectorOptions.hnsw_m, help="HNSW M")
    parser.add_argument("--ef-construction", type=int, default=VectorOptions.hnsw_ef_construction)
    parser.add_argument(
        "--ef-search", default="16,32,64,128,256,512", help="efSearch values to measure, comma-separated"
    )
    parser.add_argument("--storages", default="float32,sq8", help="HNSW storages to build, comma-separated")
    parser.add_argument("--flat-sizes", default="10000,25000,50000,100000,200000", help="flat latency at these sizes")
    parser.add_argument("--no-flat", action="store_true", help="skip the flat index at full size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)

    corpus = Corpus(args.seed)
    start = time.perf_counter()
    base = corpus.sample(args.n)
    queries = corpus.sample(args.queries)
    truth = exact_top(base, queries)
    print(
        f"{args.n:,} vectors and {args.queries} queries generated, exact top-{K} in {time.perf_counter() - start:.0f} s"
    )
    nn = (base @ queries[:100].T).max(axis=0)
    pairs = (base[:1000] * base[1000:2000]).sum(axis=1)
    print(f"cosine of a query to its nearest vector: mean {nn.mean():.3f}; of random pairs: mean {pairs.mean():.3f}")

    print("\nflat latency by size (exact, so recall is 1):")
    print("| vectors | p50 ms | p95 ms |\n|---|---|---|")
    for size in [int(s) for s in args.flat_sizes.split(",") if s and int(s) < args.n]:
        small = VectorIndex(DIMENSION, VectorOptions(kind="flat"))
        small.add(np.arange(1, size + 1, dtype=np.int64), base[:size])
        part_truth = exact_top(base[:size], queries[:200])
        r = timed_queries(small, queries[:200], part_truth)
        print(f"| {size:,} | {r['p50']:.2f} | {r['p95']:.2f} |", flush=True)
        del small

    rows = []
    if not args.no_flat:
        flat_queries = max(100, args.queries // 5) if args.n >= 500_000 else args.queries
        flat, seconds, grown, size = build(VectorOptions(kind="flat"), base)
        r = timed_queries(flat, queries[:flat_queries], truth[:flat_queries])
        rows.append(("flat", "float32", "-", seconds, grown, size, r))
        print(f"flat: built in {seconds:.1f} s, {r}", flush=True)
        del flat

    for storage in args.storages.split(","):
        options = VectorOptions(
            kind="hnsw", storage=_storage(storage), hnsw_m=args.m, hnsw_ef_construction=args.ef_construction
        )
        index, seconds, grown, size = build(options, base)
        print(f"hnsw {storage}: built in {seconds:.0f} s", flush=True)
        for ef in [int(e) for e in args.ef_search.split(",")]:
            index.options = dataclasses.replace(options, hnsw_ef_search=ef)
            r = timed_queries(index, queries, truth)
            rows.append((f"HNSW M={args.m} efC={args.ef_construction}", storage, str(ef), seconds, grown, size, r))
            print(f"  efSearch {ef}: {r}", flush=True)
        del index

    print(f"\n{args.n:,} vectors, {DIMENSION} dims, {args.threads} threads; {args.queries} single queries, top {K}:")
    print("| index | storage | efSearch | build s | RSS growth MiB | file MiB | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, held, ef_text, built_s, rss, file_bytes, r in rows:
        print(
            f"| {name} | {held} | {ef_text} | {built_s:.0f} | {rss:.0f} | {file_bytes / 2**20:.0f} |"
            f" {r['p50']:.2f} | {r['p95']:.2f} | {r['recall']:.3f} |"
        )


def _storage(name: str) -> Storage:
    if name not in ("float32", "float16", "sq8"):
        raise SystemExit(f"unknown storage {name!r}")
    return name  # type: ignore[return-value]


if __name__ == "__main__":
    main()
