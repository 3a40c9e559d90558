"""How long after a file is written in the corpus folder does `qa serve --watch` answer from it?

    python bench/watch_latency.py            # 10 new, 10 changed and 10 deleted files
    python bench/watch_latency.py --files 30

A server watches a temporary corpus (the shipped sample article plus the files this script writes). For each
file the clock starts when the file is in place (written, then renamed in, as editors and rsync do) and stops
when `/api/search` for the file's unique phrase first shows the change: the new article found, the changed
text found, the deleted article gone. The target is 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served

REPO = Path(__file__).resolve().parents[1]
WORDS = "amber basalt cobalt dune ember fjord glacier heron iris jasper kelp lichen moraine nectar onyx".split()


def phrase(n: int, version: int) -> str:
    """A unique, searchable phrase for file n's version."""
    return f"{WORDS[n % len(WORDS)]}{n}x{version} {WORDS[(n * 7 + version) % len(WORDS)]}quartz{n}v{version}"


def place(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def wait_until(client: httpx.Client, query: str, article_id: str, present: bool, limit: float = 30.0) -> float:
    """Seconds until a search for `query` shows (or no longer shows) the article."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        hits = client.get("/api/search", params={"q": query, "top_k": 3}).json()["results"]
        if (article_id in [h["article_id"] for h in hits]) == present:
            return time.perf_counter() - started
        time.sleep(0.02)  # polling a server from a benchmark, not synchronising a test
    return float("inf")


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"| {name} | {len(ordered)} | {statistics.median(ordered):.2f} | {p95:.2f} | {ordered[-1]:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10, help="files per kind of change")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "corpus", corpus)
        env = {"QA_CORPUS_DIR": str(corpus)}
        with served(Path(tmp) / "index", args=["--ingest", "--watch"], env=env) as client:
            added, changed, deleted = [], [], []
            for n in range(args.files):
                path = corpus / f"watched-{n}.txt"
                place(path, f"Watched article {n}\n\nThe {phrase(n, 1)} was seen near the harbour on Tuesday.\n")
                added.append(wait_until(client, phrase(n, 1), path.name, present=True))
            for n in range(args.files):
                path = corpus / f"watched-{n}.txt"
                place(path, f"Watched article {n}\n\nThe {phrase(n, 2)} replaced it on Wednesday.\n")
                changed.append(wait_until(client, phrase(n, 2), path.name, present=True))
            for n in range(args.files):
                path = corpus / f"watched-{n}.txt"
                path.unlink()
                deleted.append(wait_until(client, phrase(n, 2), path.name, present=False))
    print("| change | files | p50 s | p95 s | max s |")
    print("|---|---|---|---|---|")
    for name, seconds in (("new file", added), ("changed file", changed), ("deleted file", deleted)):
        print(summary(name, seconds))


if __name__ == "__main__":
    main()
