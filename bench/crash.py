"""kill -9 during `qa ingest` at random moments, many times, then check the index is whole each time.

    python bench/crash.py --runs 50                     # on ../shared/data/bbc-news
    python bench/crash.py --runs 5 --corpus corpus/     # a quick look

After each kill: SQLite integrity_check is ok, FAISS holds exactly the stored passages, every article has
all its passages and vectors. At the end an uninterrupted ingest completes the batch without duplicates.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa import QA, Settings
from qa.backends.faiss_sqlite.backend import FaissSqliteBackend

REPO = Path(__file__).resolve().parents[1]


def whole(index_dir: Path) -> tuple[bool, int]:
    qa = QA(Settings(index_dir=index_dir))
    backend = qa.backend
    assert isinstance(backend, FaissSqliteBackend)
    db = backend.store.connection()
    orphans = db.execute(
        "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.id)"
    ).fetchone()[0]
    return backend.consistent() and orphans == 0, qa.counts()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/bbc-news")
    parser.add_argument("--max-delay", type=float, default=60.0, help="latest kill, seconds after start")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
        command = [sys.executable, "-m", "qa", "ingest", "--quiet", str(args.corpus)]
        failures = 0
        for run in range(1, args.runs + 1):
            delay = rng.uniform(2.0, args.max_delay)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                process.wait(timeout=delay)
                outcome = "finished"
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                outcome = f"killed at {delay:.1f}s"
            ok, articles = whole(index_dir) if index_dir.exists() else (True, 0)
            failures += not ok
            print(f"run {run:3}: {outcome:18} articles {articles:5}  {'whole' if ok else 'BROKEN'}", flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        ok, articles = whole(index_dir)
        print(
            f"final ingest: exit {done.returncode}, {articles} articles, {'whole' if ok else 'BROKEN'}, "
            f"{time.perf_counter() - started:.1f}s"
        )
        sys.exit(1 if failures or not ok or done.returncode not in (0, 3) else 0)


if __name__ == "__main__":
    main()
