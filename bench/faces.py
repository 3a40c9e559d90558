"""What each face costs: the same kind of question through /api/ask, the OpenAI-compatible endpoint (whole and
streamed) and the MCP `ask` tool over /mcp, against a real `qa serve` on the sample corpus; and a /metrics scrape.

    python bench/faces.py                 # a Markdown table
    python bench/faces.py --rounds 100 --json

Every timed request asks a question no earlier request asked (no answer comes from a cache); the clients are
the ecosystems' own (httpx for /api, the openai client, the mcp client with one session).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
from mcp import Client

from qa import QA, Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import percentile
from served import served

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def fresh_questions() -> Iterator[str]:
    """Questions no earlier one asked: each names a different pair of the sample article's words."""
    text = (REPO / "corpus/kazakhstan-china-new-silk-road.txt").read_text()
    words = sorted({w.strip(".,“”\"'’()") for w in text.split() if len(w) > 4})
    for first, second in itertools.combinations(words, 2):
        yield f"What does the article say about {first} and {second}?"


def figures(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1), "n": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="requests per face")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    questions = fresh_questions()
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        QA(Settings(index_dir=index_dir, corpus_dir=REPO / "corpus")).ingest()
        with served(index_dir, env={"QA_API_KEY": KEY}) as http:
            base = str(http.base_url).rstrip("/")
            chat = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0)
            for _ in range(10):  # warm-up: the model, caches, connections
                http.post("/api/ask", json={"question": next(questions)}).raise_for_status()

            def api(question: str) -> None:
                http.post("/api/ask", json={"question": question}).raise_for_status()

            def completion(question: str) -> None:
                chat.chat.completions.create(model="qa", messages=[{"role": "user", "content": question}])

            def streamed(question: str) -> None:
                stream = chat.chat.completions.create(
                    model="qa", messages=[{"role": "user", "content": question}], stream=True
                )
                for _ in stream:
                    pass

            def scrape(_: str) -> None:
                http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()

            faces: dict[str, Callable[[str], None]] = {
                "POST /api/ask (httpx)": api,
                "POST /v1/chat/completions (openai client)": completion,
                "... with stream: true, to the last chunk": streamed,
                "GET /metrics (httpx)": scrape,
            }
            times = asyncio.run(interleaved(faces, f"{base}/mcp", questions, args.rounds))
    results = {face: figures(face_times) for face, face_times in times.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| face | p50 / p95 ms | n |\n|---|---|---|")
    for face, row in results.items():
        print(f"| {face} | {row['p50_ms']} / {row['p95_ms']} | {row['n']:g} |")


async def interleaved(
    faces: dict[str, Callable[[str], None]], mcp_url: str, questions: Iterator[str], rounds: int
) -> dict[str, list[float]]:
    """Each round asks every face once, so a busy moment of the machine falls on all faces alike."""
    mcp_face = "MCP tool ask at /mcp (mcp client, one session)"
    times: dict[str, list[float]] = {face: [] for face in [*faces, mcp_face]}
    async with Client(mcp_url) as client:
        for _ in range(rounds):
            for face, call in faces.items():
                question = next(questions)
                started = time.perf_counter()
                call(question)
                times[face].append((time.perf_counter() - started) * 1000)
            question = next(questions)
            started = time.perf_counter()
            result = await client.call_tool("ask", {"question": question})
            times[mcp_face].append((time.perf_counter() - started) * 1000)
            if result.is_error:
                raise RuntimeError(str(result.content))
    return times


if __name__ == "__main__":
    main()
