"""HTTP load against a real `qa serve`: N concurrent clients for T seconds with a mix of questions, searches and
article uploads; requests/s, latency percentiles per endpoint, errors by status, and server memory.

    python bench/load.py                                   # 16 clients, 60 s, sample corpus
    python bench/load.py --clients 16 --duration 60 --mix ask=4,search=4,upload=1 --corpus ../shared/data/bbc-news
    python bench/load.py --clients 8 --mix ask=1,search=1 --index /tmp/bbc-index --workers 2 \\
        --env QA_BACKEND=postgres --env QA_DATABASE_URL=postgresql://...

The server is started by the script (bench/served.py) with the rate limit off (every client is 127.0.0.1) and a
random API key for uploads; --env adds or overrides QA_* settings. --index serves a copy of an existing index
folder (uploads never touch the original); --corpus builds a fresh index from a folder first (default: corpus/).
Uploads replace a fixed pool of articles (--upload-ids) with new text each time, so the index stays the same size
and memory can be compared. After --warmup seconds of the same load, the server's resident memory (the whole
process tree, so every worker counts) is read, then again at the end: growth must stay under 10%. Exit status 1
when any response was a 5xx, a request failed, or memory grew by 10% or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served_process

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = {"ask": "POST /api/ask", "search": "GET /api/search", "upload": "POST /api/articles"}


@dataclass
class Results:
    """Latencies (ms) and statuses per endpoint; failures are requests that got no response."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter[str] = field(default_factory=Counter)


@dataclass
class Material:
    """Text to build requests from: sentences and words of the indexed articles."""

    sentences: list[str]
    words: list[str]


def process_tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants (uvicorn workers included)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        children[int(fields[1])].append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def gather_material(client: httpx.Client, articles: int = 40) -> Material:
    """Sentences and words from up to `articles` indexed articles, read through the API."""
    page = client.get("/api/articles", params={"limit": articles}).json()["articles"]
    sentences: list[str] = []
    for summary in page:
        text = client.get(f"/api/articles/{summary['id']}").json()["text"]
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s.strip()) <= 300]
    if not sentences:
        raise SystemExit("the index holds no articles to build questions from")
    words = sorted({w.strip(".,;:“”\"'’()") for s in sentences for w in s.split() if len(w) > 4})
    return Material(sentences, words)


def make_request(kind: str, material: Material, rng: random.Random, counter: int, upload_ids: int) -> dict[str, object]:
    """httpx request arguments for one request of this kind."""
    if kind == "ask":
        a, b = rng.sample(material.words, 2)
        return {"method": "POST", "url": "/api/ask", "json": {"question": f"What does the article say about {a} {b}?"}}
    if kind == "search":
        return {"method": "GET", "url": "/api/search", "params": {"q": " ".join(rng.sample(material.words, 3))}}
    body = " ".join(rng.sample(material.sentences, min(5, len(material.sentences))))
    article = {
        "id": f"load-test/{counter % upload_ids}",
        "title": f"Load test article {counter % upload_ids}",
        "text": f"{body} This is upload number {counter}.",
    }
    return {"method": "POST", "url": "/api/articles", "json": article}


async def client_loop(
    base_url: str,
    key: str,
    mix: dict[str, int],
    material: Material,
    until: float,
    results: Results | None,
    seed: int,
    counters: Counter[str],
    upload_ids: int,
) -> None:
    """One client: requests back to back until `until`; recorded into `results` unless it is None (warm-up)."""
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            counters["upload"] += kind == "upload"
            request = make_request(kind, material, rng, counters["upload"], upload_ids)
            started = time.perf_counter()
            try:
                response = await client.request(**request)  # type: ignore[arg-type]
            except httpx.HTTPError as e:
                if results is not None:
                    results.failures[f"{ENDPOINTS[kind]}: {type(e).__name__}"] += 1
                continue
            if results is not None:
                results.latencies[kind].append((time.perf_counter() - started) * 1000)
                results.statuses[kind][response.status_code] += 1


async def run_load(
    base_url: str, key: str, args: argparse.Namespace, material: Material, seconds: float, record: bool
) -> tuple[Results, float]:
    """All clients for `seconds`; returns what they recorded and the wall time."""
    results = Results()
    counters: Counter[str] = Counter()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(
            client_loop(
                base_url,
                key,
                args.mix,
                material,
                until,
                results if record else None,
                args.seed * 1000 + i + (0 if record else 500),
                counters,
                args.upload_ids,
            )
            for i in range(args.clients)
        )
    )
    return results, time.monotonic() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summarise(results: Results, wall: float, rss: dict[str, int]) -> dict[str, object]:
    """The figures as one JSON-ready object."""
    endpoints: dict[str, object] = {}
    for kind, times in sorted(results.latencies.items()):
        endpoints[ENDPOINTS[kind]] = {
            "requests": len(times),
            "per_s": round(len(times) / wall, 1),
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "p99_ms": round(percentile(times, 99), 1),
            "statuses": dict(sorted(results.statuses[kind].items())),
        }
    total = sum(len(t) for t in results.latencies.values())
    server_errors = sum(n for c in results.statuses.values() for code, n in c.items() if code >= 500)
    growth = (rss["end"] - rss["after_warmup"]) / rss["after_warmup"]
    return {
        "seconds": round(wall, 1),
        "requests": total,
        "per_s": round(total / wall, 1),
        "server_errors": server_errors,
        "failed_requests": dict(results.failures),
        "endpoints": endpoints,
        "rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "rss_growth_pct": round(100 * growth, 1),
    }


def print_table(summary: dict[str, object], args: argparse.Namespace) -> None:
    print(f"{args.clients} clients, {summary['seconds']} s, workers {args.workers}, mix {args.mix}")
    print("| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | statuses |\n|---|---|---|---|---|---|---|")
    endpoints = summary["endpoints"]
    assert isinstance(endpoints, dict)
    for name, e in endpoints.items():
        statuses = ", ".join(f"{code}: {n}" for code, n in e["statuses"].items())
        print(
            f"| {name} | {e['requests']} | {e['per_s']} | {e['p50_ms']} | {e['p95_ms']} | {e['p99_ms']} | {statuses} |"
        )
    print(f"| all | {summary['requests']} | {summary['per_s']} | | | | 5xx: {summary['server_errors']} |")
    rss = summary["rss_mb"]
    assert isinstance(rss, dict)
    print(
        f"\nserver RSS (process tree): {rss['start']} MB at start, {rss['after_warmup']} MB after warm-up, "
        f"{rss['peak']} MB peak, {rss['end']} MB at the end: growth {summary['rss_growth_pct']}% after warm-up"
    )
    if summary["failed_requests"]:
        print(f"failed requests: {summary['failed_requests']}")


def parse_mix(text: str) -> dict[str, int]:
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in ENDPOINTS:
            raise argparse.ArgumentTypeError(f"unknown kind {kind!r}; use {', '.join(ENDPOINTS)}")
        mix[kind.strip()] = int(weight or 1)
    return {k: w for k, w in mix.items() if w > 0}


def prepare_index(args: argparse.Namespace, folder: Path, env: dict[str, str]) -> Path:
    """A copy of --index, or a fresh index built from --corpus, in `folder`."""
    index = folder / "index"
    if args.index:
        shutil.copytree(args.index, index)
        return index
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "qa", "ingest", "--quiet", str(args.corpus)],
        env={**os.environ, **env, "QA_INDEX_DIR": str(index)},
        check=False,  # exit status 3 means some files were skipped; the rest is indexed
        stdout=sys.stderr,
    )
    print(f"indexed {args.corpus} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return index


async def sample_peak(pid: int, until: float, peak: list[int]) -> None:
    while time.monotonic() < until:
        peak[0] = max(peak[0], process_tree_rss(pid))
        await asyncio.sleep(1)  # a sampling interval, not synchronisation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=15, help="seconds of the same load before measuring")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("ask=4,search=4,upload=1"), help="kind=weight,…")
    parser.add_argument("--index", type=Path, help="serve a copy of this index folder")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="build the index from this folder")
    parser.add_argument("--env", action="append", default=[], help="QA_NAME=value for the server (repeatable)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--upload-ids", type=int, default=50, help="articles the uploads cycle through")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    key = secrets.token_urlsafe(16)
    env = {"QA_API_KEY": key}  # served_process turns the rate limit off unless --env sets QA_RATE_LIMIT
    env.update(item.split("=", 1) for item in args.env)
    key = env["QA_API_KEY"]
    with tempfile.TemporaryDirectory() as tmp:
        index = prepare_index(args, Path(tmp), env)
        with served_process(index, env=env, workers=args.workers) as (client, server):
            base_url = str(client.base_url)
            material = gather_material(client)
            rss = {"start": process_tree_rss(server.pid)}
            asyncio.run(run_load(base_url, key, args, material, args.warmup, record=False))
            rss["after_warmup"] = process_tree_rss(server.pid)
            peak = [rss["after_warmup"]]

            async def measured() -> tuple[Results, float]:
                until = time.monotonic() + args.duration
                sampler = asyncio.create_task(sample_peak(server.pid, until, peak))
                outcome = await run_load(base_url, key, args, material, args.duration, record=True)
                await sampler
                return outcome

            results, wall = asyncio.run(measured())
            rss["end"] = process_tree_rss(server.pid)
            rss["peak"] = max(peak[0], rss["end"])
    summary = summarise(results, wall, rss)
    summary.update(clients=args.clients, workers=args.workers, mix=args.mix, cpu_cores=os.cpu_count())
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary, args)
    growth = summary["rss_growth_pct"]
    assert isinstance(growth, float)
    if summary["server_errors"] or summary["failed_requests"] or growth >= 10:
        sys.exit(1)


if __name__ == "__main__":
    main()
