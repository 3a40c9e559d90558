"""Follow-up questions over real HTTP: quality and /api/ask latency with and without the conversation's history.

    python bench/conversation_http.py ../shared/data/coqa-wiki            # every conversation, Markdown table
    python bench/conversation_http.py ../shared/data/coqa-wiki --part 1/2 --json

Indexes the set's articles.jsonl into a temporary folder (or serves --index), starts `qa serve` (rate limit off),
and asks every turn of every conversation twice: with the gold history of the turns before it as question and
answer text only (no article ids), and alone. Quality is judged as `qa eval` judges it (article@1, support@1,
answer in highlight; first turn / turns 2+). Latency: in each conversation the mode asked first is timed (with
history in even conversations, alone in odd ones), so neither finds its question already encoded by the other.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from qa.conversation_eval import TurnOutcome, gold_history, judge, load_conversations, select, summarise
from qa.records import Answer

REPO = Path(__file__).resolve().parents[1]
QA_BIN = Path(sys.executable).parent / "qa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(index_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_RATE_LIMIT": "0"}
    return subprocess.Popen(
        [str(QA_BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_ready(client: httpx.Client, timeout: float = 180.0) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if client.post("/api/ask", json={"question": "warm up"}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # a benchmark polling a starting server, not a test
    raise RuntimeError("the server did not answer in time")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="folder with articles.jsonl and conversations.jsonl")
    parser.add_argument("--index", type=Path, help="serve this index instead of indexing the dataset")
    parser.add_argument("--part", help="only conversations at positions I mod N, as I/N")
    parser.add_argument("--max-turns", type=int, default=20, help="most recent turns sent (QA_MAX_HISTORY_TURNS)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    part = tuple(int(x) for x in args.part.split("/")) if args.part else None
    conversations = select(load_conversations(args.dataset), part)  # type: ignore[arg-type]
    outcomes: dict[str, list[TurnOutcome]] = {"history": [], "alone": []}
    times: dict[str, list[float]] = {"history": [], "alone": []}
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index or Path(tmp) / "index"
        if args.index is None:
            env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
            subprocess.run([str(QA_BIN), "ingest", "-q", str(args.dataset / "articles.jsonl")], env=env, check=True)
        port = free_port()
        process = serve(index_dir, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                wait_ready(client)
                for k, talk in enumerate(conversations):
                    order = ("history", "alone") if k % 2 == 0 else ("alone", "history")
                    for position, gold in enumerate(talk.turns):
                        for mode in order:
                            history = gold_history(talk, position)[-args.max_turns :] if mode == "history" else []
                            body = {"question": gold.question, "history": [t.model_dump() for t in history]}
                            started = time.perf_counter()
                            response = client.post("/api/ask", json=body)
                            elapsed = time.perf_counter() - started
                            response.raise_for_status()
                            answer = Answer.model_validate(response.json())
                            outcomes[mode].append(judge(talk, position, answer, elapsed))
                            if mode == order[0] and position > 0:
                                times[mode].append(elapsed * 1000)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    results = {
        "dataset": str(args.dataset),
        "conversations": len(conversations),
        "cpu_cores": os.cpu_count(),
        "modes": {
            mode: {
                "first": summarise([o for o in found if o.turn == 1]),
                "later": summarise([o for o in found if o.turn > 1]),
                "later_latency_ms": {
                    "p50": round(statistics.median(times[mode]), 1) if times[mode] else 0.0,
                    "p95": round(percentile(times[mode], 95), 1),
                    "n": len(times[mode]),
                },
            }
            for mode, found in outcomes.items()
        },
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| over HTTP | article@1 first / later | support@1 first / later | POST /api/ask p50 / p95 ms, turns 2+ |")
    print("|---|---|---|---|")
    for mode, figures in results["modes"].items():  # type: ignore[attr-defined]
        first, later, latency = figures["first"], figures["later"], figures["later_latency_ms"]
        print(
            f"| {'with history' if mode == 'history' else 'each turn alone'} "
            f"| {first['article@1']:.3f} / {later['article@1']:.3f} "
            f"| {first['support@1']:.3f} / {later['support@1']:.3f} "
            f"| {latency['p50']} / {latency['p95']} (n={latency['n']}) |"
        )


if __name__ == "__main__":
    main()
