"""Ingestion cost on ../shared/data/bbc-news (2,225 articles), the figures of the README's ingest table.

    python bench/ingest.py
    python bench/ingest.py --corpus corpus/     # a quick look on another folder

1. full ingest: passages/s, against the model's own encode rate on the same passages (pipeline overhead);
2. re-ingest of the unchanged corpus (a fresh process, as a user runs it);
3. one new article into the full index, against the same article into an empty index;
4. `qa rebuild` with no model change (no passage may be re-embedded);
5. `GET /api/search` p50/p95 over HTTP while `qa rebuild` runs in another process, against idle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from qa import QA, Article, Settings
from qa.embedding import Vectors, load_embedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served

REPO = Path(__file__).resolve().parents[1]
NEW_ARTICLE = Article(
    id="bench/new-article",
    title="Harbour reopens",
    text=" ".join(
        f"The harbour at Dunmore reopened on day {i} after repairs, and {i * 7} boats returned to the quay."
        for i in range(30)
    ),
)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def search_during_rebuild(index_dir: Path) -> tuple[str, str, int]:
    """Query latency over HTTP, idle and while another process rebuilds the index."""
    words = ["election", "football", "music", "economy", "film", "phone", "minister", "market", "chelsea", "album"]
    queries = [f"{a} {b} news" for a in words for b in words]

    def figures(times: list[float]) -> str:
        ordered = sorted(times)
        return f"{statistics.median(ordered):.1f} / {ordered[int(0.95 * (len(ordered) - 1))]:.1f} ms (n={len(ordered)})"

    with served(index_dir) as client:

        def one(query: str) -> tuple[float, bool]:
            started = time.perf_counter()
            ok = client.get("/api/search", params={"q": query}).status_code == 200
            return (time.perf_counter() - started) * 1000, ok

        for q in queries:  # warm-up
            one(q)
        idle = [one(q)[0] for q in queries]
        env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
        rebuild = subprocess.Popen([sys.executable, "-m", "qa", "rebuild"], env=env, stderr=subprocess.DEVNULL)
        during: list[float] = []
        errors = 0
        while rebuild.poll() is None:
            elapsed, ok = one(queries[len(during) % len(queries)])
            during.append(elapsed)
            errors += not ok
        return figures(idle), figures(during), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/bbc-news")
    args = parser.parse_args()
    embedder = load_embedder("all-MiniLM-L6-v2")
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        qa = QA(Settings(index_dir=index_dir), embedder)
        seconds = timed(lambda: qa.ingest([args.corpus]))
        articles, passages = qa.counts()
        texts = [text for _, text in qa.backend.passage_texts()]
        model_seconds = timed(lambda: embedder.encode(texts))
        rate, model_rate = passages / seconds, len(texts) / model_seconds
        rows.append(
            (f"full ingest ({articles} articles, {passages} passages)", f"{seconds:.1f} s, {rate:.1f} passages/s")
        )
        rows.append(("model alone on the same passages", f"{model_seconds:.1f} s, {model_rate:.1f} passages/s"))
        rows.append(("pipeline rate / model rate", f"{rate / model_rate:.2f}"))

        env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
        command = [sys.executable, "-m", "qa", "ingest", "--quiet", str(args.corpus)]
        reingest = timed(lambda: subprocess.run(command, env=env, check=False, capture_output=True))
        rows.append(("re-ingest, unchanged (`qa ingest` process, start to exit)", f"{reingest:.2f} s"))

        one_full = timed(lambda: qa.add(NEW_ARTICLE))
        empty = QA(Settings(index_dir=Path(tmp) / "empty"), embedder)
        empty.add(Article(id="warm", text="Warm-up article."))
        one_empty = timed(lambda: empty.add(NEW_ARTICLE))
        rows.append(("one new article into the full index", f"{one_full * 1000:.0f} ms"))
        rows.append(
            ("the same article into an empty index", f"{one_empty * 1000:.0f} ms ({one_full / one_empty:.2f}×)")
        )

        encoded: list[int] = []
        real_encode = embedder.encode

        def counting_encode(texts: Sequence[str]) -> Vectors:
            encoded.append(len(texts))
            return real_encode(texts)

        embedder.encode = counting_encode  # type: ignore[method-assign]
        rebuild = timed(lambda: QA(Settings(index_dir=index_dir), embedder).rebuild())
        embedder.encode = real_encode  # type: ignore[method-assign]
        rows.append(("`qa rebuild`, same model", f"{rebuild:.2f} s, {sum(encoded)} passages re-embedded"))
        idle, during, errors = search_during_rebuild(index_dir)
        rows.append(("`GET /api/search` p50 / p95, idle", idle))
        rows.append(("`GET /api/search` p50 / p95, while `qa rebuild` runs", f"{during} ({errors} errors)"))
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
