"""Start-up and answer latency on the sample corpus, over real HTTP, as a user runs it.

    python bench/latency.py            # both figures, printed as a Markdown table
    python bench/latency.py --json
    python bench/latency.py --against 309b970^1   # this tree's /api/ask beside an older commit's, interleaved

1. `make run` on an installed machine, with the index missing (cold) and present (warm): seconds from the
   command's start to the first successful POST /api/ask.
2. POST /api/ask and GET /api/search latency (p50/p95) over HTTP on the sample index, after warm-up.

With --against REV, instead: that commit's src/ (checked out in a temporary git worktree, run by this venv) and
this tree's each build their own index of corpus/ and serve it; the same distinct questions go to both servers in
turn (A, B, B, A, ...), so a machine that gets busier or quieter slows both alike, and the two p50s are compared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served

REPO = Path(__file__).resolve().parents[1]
# Ten questions for start-up; request latency uses distinct questions so no answer comes from a cache.
QUESTIONS = [
    "How large are Kazakhstan's oil reserves?",
    'What does "Nurly Zhol" mean?',
    "Who joined the SCO?",
    "When was the SCO founded?",
    "What share of Kazakhstan's exports does China consume?",
    "When will China host the next SCO meeting?",
    "How much natural gas does Kazakhstan have?",
    "What is Kazakhstan's GDP?",
    "Where was the summit held?",
    "What is the recipe for chocolate cake?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_make_run(index_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_RATE_LIMIT": "0"}  # one client, many requests
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, started


def first_answer(port: int, started: float, timeout: float = 120.0) -> float:
    url = f"http://127.0.0.1:{port}/api/ask"
    while time.perf_counter() - started < timeout:
        try:
            response = httpx.post(url, json={"question": QUESTIONS[0]}, timeout=30)
            if response.status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # a benchmark polling a starting server, not a test
    raise RuntimeError("no answer within the timeout")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def distinct_questions(count: int) -> list[str]:
    """Questions no earlier request asked: each names different words of the sample article."""
    words = sorted(set((REPO / "corpus/kazakhstan-china-new-silk-road.txt").read_text().split()))
    words = [w.strip(".,“”\"'’()") for w in words if len(w) > 4]
    return [
        f"What does the article say about {words[i % len(words)]} and {words[(i * 7 + 3) % len(words)]}?"
        for i in range(count)
    ]


def request_latency(port: int, rounds: int) -> dict[str, dict[str, float]]:
    base = f"http://127.0.0.1:{port}"
    fresh = iter(distinct_questions(2 * rounds))
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for q in QUESTIONS:  # warm-up: model, caches, connection
            client.post("/api/ask", json={"question": q})
        calls: dict[str, Callable[[str], httpx.Response]] = {
            "POST /api/ask": lambda q: client.post("/api/ask", json={"question": q}),
            "GET /api/search": lambda q: client.get("/api/search", params={"q": q}),
        }
        for name, call in calls.items():
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                response = call(next(fresh))
                times.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()
            out[name] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(percentile(times, 95), 1),
                "n": rounds,
            }
    return out


def ingested(src: Path, index_dir: Path) -> dict[str, str]:
    """`qa ingest` of corpus/ into `index_dir` by the package in `src`; the environment that serves it from there."""
    env = {"PYTHONPATH": str(src), "QA_CORPUS_DIR": str(REPO / "corpus")}
    quiet = subprocess.DEVNULL
    subprocess.run(
        [sys.executable, "-m", "qa", "ingest"],
        env={**os.environ, **env, "QA_INDEX_DIR": str(index_dir)},
        stdout=quiet,
        stderr=quiet,
        check=True,
    )
    return env


def compare(rev: str, rounds: int) -> dict[str, object]:
    """/api/ask p50/p95 of this tree and of commit `rev`, questions sent to each in turn."""
    out: dict[str, object] = {"cpu_cores": os.cpu_count(), "against": rev}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        other = Path(tmp) / "other"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), rev], cwd=REPO, check=True, capture_output=True
        )
        servers.callback(subprocess.run, ["git", "worktree", "remove", "--force", str(other)], cwd=REPO, check=False)
        clients: dict[str, httpx.Client] = {}
        for n, (label, src) in enumerate({"this tree": REPO / "src", rev: other / "src"}.items()):
            index_dir = Path(tmp) / f"index{n}"
            clients[label] = servers.enter_context(served(index_dir, env=ingested(src, index_dir)))
        for client in clients.values():
            for q in QUESTIONS:  # warm-up: model, caches, connection
                client.post("/api/ask", json={"question": q})
        times: dict[str, list[float]] = {label: [] for label in clients}
        labels = list(clients)
        for i, question in enumerate(distinct_questions(rounds)):
            for label in labels if i % 2 == 0 else reversed(labels):
                t = time.perf_counter()
                clients[label].post("/api/ask", json={"question": question}).raise_for_status()
                times[label].append((time.perf_counter() - t) * 1000)
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{rounds} questions", file=sys.stderr, flush=True)
    p50 = {label: statistics.median(values) for label, values in times.items()}
    for label, values in times.items():
        out[label] = {"p50_ms": round(p50[label], 1), "p95_ms": round(percentile(values, 95), 1)}
    out["p50 change"] = f"{100 * (p50['this tree'] / p50[rev] - 1):+.1f}%"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="requests per endpoint")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--against", metavar="REV", help="compare /api/ask with this git commit's (see above)")
    args = parser.parse_args()
    if args.against:
        compared = compare(args.against, args.rounds)
        print(json.dumps(compared, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in compared.items()))
        return
    results: dict[str, object] = {"cpu_cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        for label in ("cold: index built from corpus/", "warm: index present"):
            port = free_port()
            process, started = start_make_run(index_dir, port)
            try:
                results[f"make run to first answer, {label} (s)"] = round(first_answer(port, started), 2)
                if label.startswith("warm"):
                    results["latency"] = request_latency(port, args.rounds)
            finally:
                stop(process)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        if key == "latency":
            assert isinstance(value, dict)
            for endpoint, figures in value.items():
                print(f"| {endpoint} p50 / p95 (ms, n={figures['n']}) | {figures['p50_ms']} / {figures['p95_ms']} |")
        else:
            print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
