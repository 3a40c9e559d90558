"""Pathological article text against a real `qa serve`: re-runs the heavy attacks of issue 10 and prints the
figures beside the ones the issue found before the fixes.

    python bench/pathological.py                          # both attacks, the issue's sizes
    python bench/pathological.py --only words --words 3   # a quicker look at the first
    python bench/pathological.py --only sentence --sentence-mb 1 --json

words: ten uploads of one 4.9 MB "word" each (random letters, no space: the tokenizer makes one [UNK] word piece
of anything over 100 characters). Then the response sizes of an anonymous search whose query is such a word, of
an ask with the same question, and of 20 such searches in parallel (total bytes), and the server's resident
memory before and after. Before the fixes each word was one passage and every hit carried it whole.

sentence: one 5 MB upload of a single "sentence" of random words (drawn from the sample article's words, no
punctuation). The seconds to its 201 and the server's memory growth; while it is being chunked and embedded, a
small write every --write-every seconds (status and latency: none may be a 503) and a search every
--read-every seconds (the slowest one). Before the fixes chunking was quadratic and held the writer lock.

Each attack gets its own server over a fresh index of corpus/ (bench/served.py, rate limit off, a random API
key for the uploads); memory is the server's process tree (bench/load.py's process_tree_rss). Progress goes to
stderr. Exit status 1 when a correctness condition fails: an upload not 201, any 5xx or failed request, a hit
or citation carrying more than the documented 2,560 characters of passage, or a small write refused with 503.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import process_tree_rss
from served import finish, served_process

REPO = Path(__file__).resolve().parents[1]
MAX_PASSAGE_CHARS = 2_560  # what a citation or search hit may carry around its highlight (SECURITY.md)
MB = 1_000_000

# What issue 10 measured before the fixes, for the table beside ours.
BEFORE_WORDS = {
    "search_bytes": 49_000_000,
    "ask_bytes": 58_800_000,
    "parallel_search_bytes": 980_000_000,
    "rss_mb_before": 1_700,
    "rss_mb_after": 3_600,
}
BEFORE_SENTENCE = {
    "seconds_to_201": 1_197,
    "rss_growth_mb": 1_300,
    "small_writes": "503 after 60 s",
    "slowest_read_s": 35.7,
}


def note(message: str) -> None:
    """Progress on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Probe:
    """Statuses and latencies (s) of requests made alongside an attack; failures got no response."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def record(self, status: int, seconds: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(seconds)

    def summary(self) -> dict[str, Any]:
        times = self.latencies or [0.0]
        return {
            "requests": len(self.latencies),
            "statuses": dict(sorted(self.statuses.items())),
            "failed": self.failures,
            "p50_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
        }


class PeakMemory:
    """Samples a process tree's resident memory every half second in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = process_tree_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):  # a sampling interval, not synchronisation
            self.peak = max(self.peak, process_tree_rss(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def mb(n_bytes: int) -> float:
    return round(n_bytes / 2**20, 1)


@contextmanager
def server_over_sample(key: str, env: dict[str, str]) -> Iterator[tuple[httpx.Client, int]]:
    """A `qa serve` over a fresh index of corpus/, with a warm model: yields a client and the server's pid."""
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        server_env = {"QA_API_KEY": key, **env}
        subprocess.run(
            [sys.executable, "-m", "qa", "ingest", "--quiet", str(REPO / "corpus")],
            env={**os.environ, **server_env, "QA_INDEX_DIR": str(index)},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with served_process(index, env=server_env) as (client, server):
            client.timeout = httpx.Timeout(3600)  # the attacks are slow by design; nothing should time out
            client.post("/api/ask", json={"question": "Who joined the Shanghai Cooperation Organization?"})
            yield client, server.pid


def hits_within_cap(payload: dict[str, Any], key: str) -> tuple[int, int, int]:
    """(hits, hits from the huge words, longest passage in characters) of a search (`results`) or an ask
    (`citations`) response."""
    items = payload[key]
    huge = sum(item["article_id"].startswith("huge-word/") for item in items)
    return len(items), huge, max((len(item["passage"]) for item in items), default=0)


def attack_words(args: argparse.Namespace, key: str, env: dict[str, str]) -> dict[str, Any]:
    """Ten uploads of one huge "word"; how much a search, an ask and 20 parallel searches send back."""
    rng = random.Random(args.seed)
    auth = {"Authorization": f"Bearer {key}"}
    size = int(args.word_mb * MB)
    problems: list[str] = []
    with server_over_sample(key, env) as (client, pid):
        rss_before = process_tree_rss(pid)
        note(f"words: server up, {mb(rss_before)} MB; uploading {args.words} words of {size:,} characters")
        uploads = []
        with PeakMemory(pid) as memory:
            words = []
            for i in range(args.words):
                word = "".join(rng.choices(string.ascii_lowercase, k=size))
                words.append(word)
                started = time.perf_counter()
                response = client.post(
                    "/api/articles", json={"id": f"huge-word/{i}", "title": f"Word {i}", "text": word}, headers=auth
                )
                uploads.append({"status": response.status_code, "seconds": round(time.perf_counter() - started, 1)})
                note(f"words: upload {i + 1}/{args.words}: {response.status_code} in {uploads[-1]['seconds']} s")
                if response.status_code != 201:
                    problems.append(f"upload {i} answered {response.status_code}: {response.text[:200]}")
            passages = client.get("/healthz").json()["passages"]
            rss_uploaded = process_tree_rss(pid)
            query = words[0][: args.query_chars]  # one [UNK] piece: the dense leg finds the words' passages first
            search = client.get("/api/search", params={"q": query})
            request_bytes = len(f"GET {search.request.url.raw_path.decode()} HTTP/1.1\r\n\r\n")
            search_top = client.get("/api/search", params={"q": query, "top_k": args.top_k})
            ask = client.post("/api/ask", json={"question": query})
            note(
                f"words: search {len(search.content):,} B, top_k={args.top_k} {len(search_top.content):,} B, ask "
                f"{len(ask.content):,} B; now {args.parallel} searches in parallel"
            )

            def one_search(_: int) -> tuple[int, int]:
                response = client.get("/api/search", params={"q": query})
                return response.status_code, len(response.content)

            started = time.perf_counter()
            with ThreadPoolExecutor(args.parallel) as pool:
                parallel = list(pool.map(one_search, range(args.parallel)))
            parallel_seconds = time.perf_counter() - started
            rss_after = process_tree_rss(pid)
        shapes = {}
        for name, response, items in (
            ("search", search, "results"),
            ("search_top_k", search_top, "results"),
            ("ask", ask, "citations"),
        ):
            if response.status_code != 200:
                problems.append(f"{name} answered {response.status_code}")
                continue
            count, huge, longest = hits_within_cap(response.json(), items)
            shapes[name] = {"hits": count, "from_huge_words": huge, "longest_passage_chars": longest}
            if longest > MAX_PASSAGE_CHARS:
                problems.append(f"{name}: a hit carries {longest:,} characters of passage")
        problems += [f"a parallel search answered {status}" for status, _ in parallel if status != 200]
    return {
        "words": args.words,
        "word_chars": size,
        "uploads": uploads,
        "passages_in_index": passages,
        "search_request_bytes": request_bytes,
        "search_bytes": len(search.content),
        "top_k": args.top_k,
        "search_top_k_bytes": len(search_top.content),
        "ask_bytes": len(ask.content),
        "hits": shapes,
        "parallel_searches": args.parallel,
        "parallel_search_bytes": sum(n for _, n in parallel),
        "parallel_search_seconds": round(parallel_seconds, 2),
        "rss_mb": {
            "before": mb(rss_before),
            "after_uploads": mb(rss_uploaded),
            "after": mb(rss_after),
            "peak": mb(memory.peak),
        },
        "before_the_fix": BEFORE_WORDS,
        "problems": problems,
    }


def repeat_until(stop: threading.Event, every: float, action: Callable[[], None]) -> threading.Thread:
    """A thread calling `action` every `every` seconds until `stop` is set."""

    def run() -> None:
        while not stop.is_set():
            action()
            stop.wait(every)  # the request rate, not synchronisation

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def timed(probe: Probe, call: Callable[[], httpx.Response]) -> None:
    started = time.perf_counter()
    try:
        response = call()
    except httpx.HTTPError as e:
        probe.failures.append(f"{type(e).__name__}: {e}")
        return
    probe.record(response.status_code, time.perf_counter() - started)


def attack_sentence(args: argparse.Namespace, key: str, env: dict[str, str]) -> dict[str, Any]:
    """One upload of a 5 MB sentence of random words while small writes and reads go on."""
    rng = random.Random(args.seed)
    sample = " ".join(path.read_text() for path in sorted((REPO / "corpus").glob("*.txt")))
    vocabulary = sorted({word.lower() for word in re.findall(r"[A-Za-z]+", sample)})
    envelope = len(json.dumps({"id": "huge-sentence", "title": "One sentence", "text": ""}))
    size = int(args.sentence_mb * MB) - envelope - 1_000  # the whole body within QA_MAX_UPLOAD_BYTES
    parts: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(vocabulary)
        parts.append(word)
        length += len(word) + 1
    text = " ".join(parts)[:size].rstrip()
    auth = {"Authorization": f"Bearer {key}"}
    writes, reads = Probe(), Probe()
    with server_over_sample(key, env) as (client, pid):
        rss_before = process_tree_rss(pid)
        note(
            f"sentence: server up, {mb(rss_before)} MB; uploading {len(text):,} characters, {len(parts):,} words "
            f"from a vocabulary of {len(vocabulary)}"
        )
        stop = threading.Event()
        counter = iter(range(10**9))
        with httpx.Client(base_url=client.base_url, timeout=600) as side:

            def small_write() -> None:
                n = next(counter)
                article = {"id": f"small/{n}", "title": f"Small {n}", "text": f"A small article, number {n}."}
                timed(writes, lambda: side.post("/api/articles", json=article, headers=auth))

            def read() -> None:
                timed(reads, lambda: side.get("/api/search", params={"q": "Kazakhstan oil reserves"}))

            with PeakMemory(pid) as memory:
                threads = [repeat_until(stop, args.write_every, small_write), repeat_until(stop, args.read_every, read)]
                started = time.perf_counter()
                progress = threading.Thread(target=_report_progress, args=(stop, started, writes, reads), daemon=True)
                progress.start()
                try:
                    response = client.post(
                        "/api/articles",
                        json={"id": "huge-sentence", "title": "One sentence", "text": text},
                        headers=auth,
                    )
                    seconds = time.perf_counter() - started
                finally:
                    stop.set()
                    for thread in [*threads, progress]:
                        thread.join()
            rss_after = process_tree_rss(pid)
        passages = client.get("/healthz").json()["passages"]
    note(f"sentence: {response.status_code} after {seconds:.0f} s; now chunking the same text in this process")
    chunking = chunking_alone(text)
    problems = []
    if response.status_code != 201:
        problems.append(f"the upload answered {response.status_code}: {response.text[:200]}")
    for name, probe in (("small write", writes), ("read", reads)):
        bad = {s: n for s, n in probe.statuses.items() if s >= 500}
        if bad:
            problems.append(f"{name}s answered {bad}")
        problems += [f"a {name} failed: {f}" for f in probe.failures]
    return {
        "characters": len(text),
        "words": len(parts),
        "vocabulary": len(vocabulary),
        "status": response.status_code,
        "seconds_to_201": round(seconds, 1),
        "passages_in_index": passages,
        "chunking_alone": chunking,
        "rss_mb": {"before": mb(rss_before), "peak": mb(memory.peak), "after": mb(rss_after)},
        "rss_growth_mb": mb(memory.peak - rss_before),
        "small_writes": writes.summary(),
        "reads": reads.summary(),
        "before_the_fix": BEFORE_SENTENCE,
        "problems": problems,
    }


def chunking_alone(text: str) -> dict[str, Any]:
    """Passages and seconds of chunking `text` in this process with the model's tokenizer (no embedding)."""
    from qa.embedding import SentenceTransformerEmbedder
    from qa.indexing.chunking import ChunkingPolicy, passages_for
    from qa.records import Article
    from qa.settings import Settings

    settings = Settings()
    embedder = SentenceTransformerEmbedder(settings.model)
    started = time.perf_counter()
    passages = passages_for(
        Article(id="huge-sentence", text=text), ChunkingPolicy(settings.chunk_tokens, settings.chunk_overlap), embedder
    )
    return {"passages": len(passages), "seconds": round(time.perf_counter() - started, 1)}


def _report_progress(stop: threading.Event, started: float, writes: Probe, reads: Probe) -> None:
    while not stop.wait(15):  # a progress interval
        note(
            f"sentence: {time.perf_counter() - started:.0f} s, small writes {writes.statuses}, "
            f"reads {len(reads.latencies)} (slowest {max(reads.latencies, default=0):.2f} s)"
        )


def print_tables(results: dict[str, Any]) -> None:
    if "words" in results:
        w = results["words"]
        before = w["before_the_fix"]
        print(
            f"\nwords: {w['words']} uploads of one {w['word_chars']:,}-character word; "
            f"{w['passages_in_index']:,} passages in the index"
        )
        print("| measure | before the fix (issue 10) | now |\n|---|---|---|")
        hits = w["hits"]

        def shape(name: str) -> str:
            h = hits.get(name, {})
            longest = h.get("longest_passage_chars")
            return f"{h.get('hits')} hits, {h.get('from_huge_words')} from the words, longest {longest} chars"

        print(
            f"| anonymous search ({w['search_request_bytes']}-byte request), response | "
            f"{before['search_bytes'] / MB:.0f} MB | {w['search_bytes']:,} B ({shape('search')}) |"
        )
        print(
            f"| the same search with top_k={w['top_k']}, response | - | {w['search_top_k_bytes']:,} B "
            f"({shape('search_top_k')}) |"
        )
        print(f"| /api/ask, response | {before['ask_bytes'] / MB:.1f} MB | {w['ask_bytes']:,} B ({shape('ask')}) |")
        print(
            f"| {w['parallel_searches']} parallel searches, total | {before['parallel_search_bytes'] / MB:.0f} MB | "
            f"{w['parallel_search_bytes']:,} B in {w['parallel_search_seconds']} s |"
        )
        rss = w["rss_mb"]
        print(
            f"| server RSS before / after | {before['rss_mb_before']:,} / {before['rss_mb_after']:,} MB | "
            f"{rss['before']:,} / {rss['after']:,} MB (peak {rss['peak']:,}) |"
        )
        seconds = [u["seconds"] for u in w["uploads"]]
        print(
            f"| upload of one word, seconds (median, max) | - | {statistics.median(seconds):.1f}, {max(seconds):.1f} |"
        )
    if "sentence" in results:
        s = results["sentence"]
        before = s["before_the_fix"]
        writes, reads = s["small_writes"], s["reads"]
        print(
            f"\nsentence: {s['characters']:,} characters, {s['words']:,} words, no punctuation; "
            f"{s['passages_in_index']:,} passages in the index after"
        )
        print("| measure | before the fix (issue 10) | now |\n|---|---|---|")
        print(
            f"| seconds to the 201 | {before['seconds_to_201']:,} | {s['seconds_to_201']} ({s['status']}; "
            f"{s['passages_in_index'] / max(s['seconds_to_201'], 0.1):.1f} passages/s) |"
        )
        chunking = s["chunking_alone"]
        print(
            f"| of which chunking (measured alone, in the script's process) | - | {chunking['seconds']} s, "
            f"{chunking['passages']:,} passages |"
        )
        print(
            f"| server memory growth | {before['rss_growth_mb']:,} MB | {s['rss_growth_mb']} MB "
            f"(RSS {s['rss_mb']['before']} → peak {s['rss_mb']['peak']}) |"
        )
        print(
            f"| small writes meanwhile | {before['small_writes']} | {writes['requests']}: {writes['statuses']}, "
            f"p50 {writes['p50_s']} s, max {writes['max_s']} s |"
        )
        print(
            f"| slowest read meanwhile | {before['slowest_read_s']} s | {reads['max_s']} s "
            f"({reads['requests']} reads: {reads['statuses']}, p50 {reads['p50_s']} s) |"
        )
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["words", "sentence"], help="run one attack (default: both)")
    parser.add_argument("--words", type=int, default=10, help="huge words uploaded")
    parser.add_argument("--word-mb", type=float, default=4.9, help="size of each word, in millions of characters")
    parser.add_argument("--query-chars", type=int, default=150, help="characters of a word used as the query")
    parser.add_argument("--top-k", type=int, default=50, help="hits asked for by the second search")
    parser.add_argument("--parallel", type=int, default=20, help="searches sent at once")
    parser.add_argument("--sentence-mb", type=float, default=5.0, help="size of the sentence upload's JSON body, MB")
    parser.add_argument("--write-every", type=float, default=3.0, help="seconds between small writes meanwhile")
    parser.add_argument("--read-every", type=float, default=1.0, help="seconds between searches meanwhile")
    parser.add_argument("--env", action="append", default=[], help="QA_NAME=value for the server (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    key = secrets.token_urlsafe(16)
    env = dict(item.split("=", 1) for item in args.env)
    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    if args.only in (None, "words"):
        results["words"] = attack_words(args, key, env)
    if args.only in (None, "sentence"):
        results["sentence"] = attack_sentence(args, key, env)
    results["load_average_after"] = os.getloadavg()
    results["problems"] = [p for part in ("words", "sentence") if part in results for p in results[part]["problems"]]
    finish(results, args.json, print_tables)


if __name__ == "__main__":
    main()
