"""Where the memory of a serving process goes as it answers: tracemalloc growth by source line between two points
of a steady stream of questions and searches, beside the process's resident memory.

    python bench/memory_profile.py --index /tmp/bbc-index                  # 300 warm-up, then 1,500 requests
    python bench/memory_profile.py --index /tmp/bbc-index --warmup 100 --requests 600 --top 15 --frames 4
    python bench/memory_profile.py --index /tmp/bbc-index --threads 8 --write-every 3 --no-trace   # RSS only
    python bench/memory_profile.py --index /tmp/bbc-index --threads 8 --write-every 3 --no-trace --as-served

It opens the index read-only in this process (the same `QA` that `qa serve` holds), warms up with --warmup
requests, takes a snapshot, sends --requests more (half questions, half searches, built from the articles' words as
bench/soak.py builds them, so almost every question is new), takes another snapshot and prints the lines whose
allocations grew most, the growth in total, and RSS at both points. Python objects and numpy arrays are traced;
memory that torch or the C allocator hold (and fragmentation) shows only in RSS. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import re
import sqlite3
import sys
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import process_tree_rss
from qa.errors import ArticleNotFound
from qa.records import Article
from qa.server.serving import release_free_memory_every, return_large_blocks
from qa.service import QA
from qa.settings import Settings


def rss_mb() -> float:
    return process_tree_rss(os.getpid()) / 2**20


def passages_of(index: Path, limit: int = 3000) -> list[str]:
    db = sqlite3.connect(f"file:{index / 'qa.sqlite3'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT text FROM passages LIMIT ?", (limit,))]
    finally:
        db.close()


class Traffic:
    """The request mix, sent from one thread or from a pool (a new pool every 100 requests unless --same-threads,
    as a server's worker threads come and go)."""

    def __init__(self, qa: QA, texts: list[str], args: argparse.Namespace) -> None:
        self.qa, self.texts, self.args = qa, texts, args
        self.words = sorted({w for t in texts for w in re.findall(r"[A-Za-z]{5,}", t)})
        self.rng = random.Random(args.seed)
        self.pool = ThreadPoolExecutor(args.threads) if args.threads > 1 else None

    def run(self, count: int, label: str) -> None:
        """Send `count` requests."""
        requests = [self._request(n, random.Random(self.rng.random())) for n in range(count)]
        for first in range(0, count, 100):
            batch = requests[first : first + 100]
            if self.pool is None:
                for call in batch:
                    call()
            else:
                if not self.args.same_threads:
                    self.pool.shutdown()
                    self.pool = ThreadPoolExecutor(self.args.threads)
                list(self.pool.map(lambda call: call(), batch))
            print(f"{label}: {first + len(batch)}/{count} requests, RSS {rss_mb():.0f} MB", file=sys.stderr, flush=True)

    def _request(self, n: int, rng: random.Random) -> Callable[[], object]:
        """The n-th request of the mix, ready to run."""
        qa, args = self.qa, self.args
        if args.write_every and n % args.write_every == 0:
            article_id = f"profile/{rng.randrange(args.upload_ids)}"
            if rng.random() < 0.2:
                return lambda: _delete(qa, article_id)
            article = Article(id=article_id, title=f"Profile {n}", text="\n\n".join(rng.sample(self.texts, 4)))
            return lambda: qa.add(article)
        if n % 2 == 0:
            a, b = rng.sample(self.words, 2)
            return lambda: qa.ask(f"What does the article say about {a} and {b}?")
        query, top_k = " ".join(rng.sample(self.words, 3)), rng.choice([5, 10, 20])
        return lambda: qa.search(query, top_k=top_k)


def _delete(qa: QA, article_id: str) -> None:
    with contextlib.suppress(ArticleNotFound):
        qa.delete(article_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an index folder (opened read-only in effect)")
    parser.add_argument("--warmup", type=int, default=300, help="requests before the first snapshot")
    parser.add_argument("--requests", type=int, default=1500, help="requests between the two snapshots")
    parser.add_argument("--top", type=int, default=12, help="lines to show")
    parser.add_argument("--frames", type=int, default=1, help="frames per traceback (more: slower, deeper)")
    parser.add_argument("--write-every", type=int, default=0, help="every Nth request is an upload or a delete")
    parser.add_argument("--upload-ids", type=int, default=100, help="ids the uploads cycle through")
    parser.add_argument("--no-trace", dest="trace", action="store_false", help="RSS only (tracemalloc off)")
    parser.add_argument("--threads", type=int, default=1, help="send requests from this many threads at once")
    parser.add_argument(
        "--as-served", action="store_true", help="malloc set as `qa serve` sets it (QA_MMAP_THRESHOLD, ...)"
    )
    parser.add_argument("--same-threads", action="store_true", help="one pool of threads throughout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    qa = QA(Settings(index_dir=args.index))
    if args.as_served:  # what create_app does in a `qa serve` process
        return_large_blocks(qa.settings.mmap_threshold)
        release_free_memory_every(qa.settings.memory_release_interval)
    traffic = Traffic(qa, passages_of(args.index), args)
    if args.trace:
        tracemalloc.start(args.frames)
    traffic.run(args.warmup, "warm-up")
    gc.collect()
    first_rss = rss_mb()
    if not args.trace:
        traffic.run(args.requests, "measured")
        gc.collect()
        end_rss = rss_mb()
        print(f"RSS {first_rss:.0f} -> {end_rss:.0f} MB ({end_rss - first_rss:+.1f}) over {args.requests} requests")
        return
    first = tracemalloc.take_snapshot()
    traffic.run(args.requests, "measured")
    gc.collect()
    second, second_rss = tracemalloc.take_snapshot(), rss_mb()

    key = "traceback" if args.frames > 1 else "lineno"
    stats = second.compare_to(first, key)
    traced = sum(s.size_diff for s in stats) / 2**20
    print(f"RSS {first_rss:.0f} -> {second_rss:.0f} MB ({second_rss - first_rss:+.1f}); traced {traced:+.1f} MB")
    for stat in stats[: args.top]:
        print(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  {stat.traceback.format()[-1].strip()}")
        for line in stat.traceback.format()[:-1][-2 * (args.frames - 1) :]:
            print(f"{'':29}{line.strip()}")


if __name__ == "__main__":
    main()
