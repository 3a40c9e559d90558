"""A soak: 30 minutes of mixed use of a real `qa serve --watch`, with an ingest killed by kill -9 every few
minutes; at the end nothing acknowledged is lost, nothing is duplicated, the index is whole and memory is flat.

    python bench/soak.py                                  # 30 minutes on ../shared/data/bbc-news
    python bench/soak.py --minutes 4 --warmup 1           # a quick look
    python bench/soak.py --json --keep /tmp/soak          # one JSON object; keep the index and logs

What runs at once, each at a modest pace (the point is correctness over time, not throughput):
  - questions (POST /api/ask) and searches (GET /api/search) built from the articles' words;
  - uploads (POST /api/articles, JSON and, one in four, a .json file) replacing a pool of --upload-ids ids,
    each 201 recorded with its content; deletes (DELETE) of uploaded ids, each 200 recorded; requests on one id
    never overlap, so the last acknowledged one is the truth;
  - a checker that reads back a random acknowledged id every few seconds (a lost write is seen when it happens);
  - the watched folder (`qa serve --ingest --watch`, QA_CORPUS_DIR in a temporary folder) edited: files added
    (written in place or renamed in), changed, renamed and deleted;
  - `qa ingest --prune` of another folder into the same index, restarted as soon as it ends (between runs some of
    that folder's files are changed, added or removed, so every run writes) and killed with kill -9 at random
    moments, every --kill-min to --kill-max seconds.
Server memory (its process tree, bench/load.py's process_tree_rss) is sampled every 10 s.

At the end the edits stop, a last ingest runs uninterrupted, and the script checks, failing (exit status 1) on any
miss: no 5xx and no request without a response; every acknowledged upload is there with its last acknowledged
content and every acknowledged delete is gone (through the API and in SQLite, where the uploads are exactly the
articles without a file); no id twice in the article list and no passage twice (article and ordinal, or FAISS id);
FaissSqliteBackend.consistent(), SQLite's integrity_check and FTS5's integrity-check; the watched folder's
articles are exactly what its files hold (after the watcher settles) and so are the ingested folder's; the server's
memory over the last minute (median of the samples) within 10% of the minute before the warm-up ended.

Text comes from ../shared/data/bbc-news (--corpus); without it the script says so and exits 0 having run nothing.
Progress goes to stderr once a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import process_tree_rss
from qa.articles.corpus import read_paths
from qa.articles.reading import article_from_mapping
from qa.backends.faiss_sqlite.backend import FaissSqliteBackend
from qa.records import Article
from qa.settings import Settings
from served import served_process

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("business", "entertainment", "politics", "sport", "tech")


def note(message: str) -> None:
    """Progress on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- what the clients saw ---------------------------------------------------------------------------------------
@dataclass
class Ledger:
    """Every request's status, and the acknowledged state of each uploaded id (the truth to check against)."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    present: dict[str, Article] = field(default_factory=dict)  # id -> the last acknowledged upload
    deleted: dict[str, Article | None] = field(default_factory=dict)  # id -> what its acknowledged delete removed
    uncertain: set[str] = field(default_factory=set)  # ids whose last write got no response: either outcome is fine
    acknowledged: Counter[str] = field(default_factory=Counter)
    duplicate_hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, response: httpx.Response | None, seconds: float, error: str = "") -> None:
        with self.lock:
            if response is None:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {kind}: {error}")
                return
            self.statuses[kind][response.status_code] += 1
            self.latencies[kind].append(seconds)
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{time.strftime('%H:%M:%S')} {kind}: {response.status_code} {response.text[:300]}"
                )

    def problem(self, message: str) -> None:
        with self.lock:
            self.problems.append(f"{time.strftime('%H:%M:%S')} {message}")
        note(f"PROBLEM: {message}")


class IdLocks:
    """One lock per uploaded id, so requests on the same id never overlap."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    @contextmanager
    def held(self, article_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks[article_id]
        with lock:
            yield


@dataclass
class Material:
    """Texts the clients and the folder editors draw from."""

    sentences: list[str]
    words: list[str]
    upload_texts: list[str]
    watch_reserve: list[Path]
    ingest_reserve: list[Path]


def request(ledger: Ledger, kind: str, call: Callable[[], httpx.Response]) -> httpx.Response | None:
    """Make one request, recording its status and latency, or its failure."""
    started = time.perf_counter()
    try:
        response = call()
    except httpx.HTTPError as e:
        ledger.record(kind, None, 0.0, f"{type(e).__name__}: {e}")
        return None
    ledger.record(kind, response, time.perf_counter() - started)
    return response


# -- the actors -------------------------------------------------------------------------------------------------
class Actors:
    """The clients and the folder editors, each a thread looping until `stop` is set."""

    def __init__(self, args: argparse.Namespace, base_url: str, key: str, material: Material, folders: Folders) -> None:
        self.args = args
        self.base_url = base_url
        self.auth = {"Authorization": f"Bearer {key}"}
        self.material = material
        self.folders = folders
        self.ledger = Ledger()
        self.locks = IdLocks()
        self.stop = threading.Event()
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        a = self.args
        for name, every, action in (
            ("ask", a.ask_every, self.ask),
            ("search", a.search_every, self.search),
            ("upload", a.upload_every, self.upload),
            ("delete", a.delete_every, self.delete),
            ("verify", a.verify_every, self.verify),
            ("edit-watched", a.edit_every, self.folders.edit_watched),
        ):
            thread = threading.Thread(target=self._loop, args=(name, every, action), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _loop(self, name: str, every: float, action: Callable[[httpx.Client, random.Random], None]) -> None:
        rng = random.Random(f"{self.args.seed}-{name}")
        with httpx.Client(base_url=self.base_url, timeout=self.args.request_timeout) as client:
            while not self.stop.is_set():
                try:
                    action(client, rng)
                except Exception as e:  # an actor's own bug must be seen, not end the soak silently
                    self.ledger.problem(f"{name} raised {type(e).__name__}: {e}")
                self.stop.wait(rng.uniform(0.5, 1.5) * every)  # the actor's pace, not synchronisation

    def next_number(self) -> int:
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def ask(self, client: httpx.Client, rng: random.Random) -> None:
        a, b = rng.sample(self.material.words, 2)
        question = {"question": f"What does the article say about {a} and {b}?"}
        response = request(self.ledger, "ask", lambda: client.post("/api/ask", json=question))
        if response is not None and response.status_code == 200:
            self._no_duplicates("ask", response.json()["citations"])

    def search(self, client: httpx.Client, rng: random.Random) -> None:
        query = " ".join(rng.sample(self.material.words, 3))
        top_k = rng.choice([5, 10, 20])
        response = request(
            self.ledger, "search", lambda: client.get("/api/search", params={"q": query, "top_k": top_k})
        )
        if response is not None and response.status_code == 200:
            self._no_duplicates("search", response.json()["results"])

    def _no_duplicates(self, kind: str, hits: list[dict[str, Any]]) -> None:
        """No passage twice among search results; no sentence cited twice by an answer (which may cite two
        sentences of one passage)."""
        seen = [(h["article_id"], h["start"], h["end"], *(h["highlight"] if kind == "ask" else ())) for h in hits]
        if len(set(seen)) != len(seen):
            with self.ledger.lock:
                self.ledger.duplicate_hits += 1
            self.ledger.problem(f"{kind}: the same passage twice in one response: {seen}")

    def upload(self, client: httpx.Client, rng: random.Random) -> None:
        article_id = f"soak/upload-{rng.randrange(self.args.upload_ids)}"
        n = self.next_number()
        body = " ".join(rng.sample(self.material.sentences, 4))
        payload = {
            "id": article_id,
            "title": f"Soak upload {n}",
            "published": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "text": f"{body} Soak marker zq{n}soak appears in upload {n} only.",
        }
        expected = article_from_mapping(payload, default_id="", where="soak")
        as_file = rng.random() < 0.25
        files = {"file": (f"upload-{n}.json", json.dumps(payload).encode(), "application/json")}

        def call() -> httpx.Response:
            if as_file:
                return client.post("/api/articles", files=files, headers=self.auth)
            return client.post("/api/articles", json=payload, headers=self.auth)

        with self.locks.held(article_id):
            response = request(self.ledger, "upload", call)
            with self.ledger.lock:
                if response is None:
                    self.ledger.uncertain.add(article_id)
                elif response.status_code == 201:
                    self.ledger.present[article_id] = expected
                    self.ledger.deleted.pop(article_id, None)
                    self.ledger.uncertain.discard(article_id)
                    self.ledger.acknowledged["upload"] += 1
        if response is not None and response.status_code != 201:
            self.ledger.problem(f"upload of {article_id} answered {response.status_code}: {response.text[:200]}")

    def delete(self, client: httpx.Client, rng: random.Random) -> None:
        with self.ledger.lock:
            candidates = sorted(self.ledger.present)
        if not candidates:
            return
        article_id = rng.choice(candidates)
        with self.locks.held(article_id):
            with self.ledger.lock:
                known = article_id in self.ledger.present
                uncertain = article_id in self.ledger.uncertain
            response = request(
                self.ledger, "delete", lambda: client.delete(f"/api/articles/{article_id}", headers=self.auth)
            )
            with self.ledger.lock:
                if response is None:
                    self.ledger.uncertain.add(article_id)
                elif response.status_code == 200:
                    self.ledger.deleted[article_id] = self.ledger.present.pop(article_id, None)
                    self.ledger.uncertain.discard(article_id)
                    self.ledger.acknowledged["delete"] += 1
        if response is not None and response.status_code == 404 and known and not uncertain:
            self.ledger.problem(f"LOST WRITE: {article_id} was acknowledged (201) but DELETE found nothing")
        elif response is not None and response.status_code not in (200, 404):
            self.ledger.problem(f"delete of {article_id} answered {response.status_code}: {response.text[:200]}")

    def verify(self, client: httpx.Client, rng: random.Random) -> None:
        with self.ledger.lock:
            candidates = sorted((self.ledger.present.keys() | self.ledger.deleted.keys()) - self.ledger.uncertain)
        if not candidates:
            return
        article_id = rng.choice(candidates)
        with self.locks.held(article_id):
            with self.ledger.lock:
                expected = self.ledger.present.get(article_id)
            response = request(self.ledger, "verify", lambda: client.get(f"/api/articles/{article_id}"))
        if response is not None:
            for message in check_one(article_id, expected, response):
                self.ledger.problem(message)


def check_one(article_id: str, expected: Article | None, response: httpx.Response) -> list[str]:
    """What is wrong with GET /api/articles/{id}, given the last acknowledged write (None: a delete)."""
    if expected is None:
        return (
            [] if response.status_code == 404 else [f"DELETED BUT PRESENT: {article_id} answers {response.status_code}"]
        )
    if response.status_code != 200:
        return [f"LOST WRITE: {article_id} was acknowledged (201) but answers {response.status_code}"]
    got = response.json()
    if (got["title"], got["text"], got["published"]) != (expected.title, expected.text, expected.published):
        return [
            f"STALE: {article_id} is not its last acknowledged content (title {got['title']!r}, "
            f"expected {expected.title!r})"
        ]
    return []


# -- the folders ------------------------------------------------------------------------------------------------
class Folders:
    """The watched folder and the ingested one, and the ingest that is killed at random."""

    def __init__(self, args: argparse.Namespace, root: Path, env: dict[str, str], material: Material) -> None:
        self.args = args
        self.watched = root / "watched"
        self.ingested = root / "ingested"
        self.env = env
        self.material = material
        self.lock = threading.Lock()
        self.edits: Counter[str] = Counter()
        self.ingest_runs: Counter[str] = Counter()
        self.ingest_log = root / "ingest.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.rng = random.Random(f"{args.seed}-folders")

    def watched_files(self) -> list[Path]:
        return sorted(p for p in self.watched.rglob("*.txt") if not p.name.startswith("."))

    def edit_watched(self, _client: httpx.Client, rng: random.Random) -> None:
        """One change to the watched folder: add, change, rename or delete a file."""
        files = self.watched_files()
        roll = rng.random()
        if (roll < 0.4 or len(files) < self.args.watch_min) and self.material.watch_reserve:
            source = self.material.watch_reserve.pop()
            target = self.watched / rng.choice(CATEGORIES) / f"w{self.next_edit('add')}-{source.name}"
            target.parent.mkdir(exist_ok=True)
            place(target, source.read_text(errors="replace"), rename=rng.random() < 0.5)
        elif roll < 0.75 and files:
            target = rng.choice(files)
            text = target.read_text(errors="replace")
            place(
                target,
                f"{text}\n\nUpdate {self.next_edit('change')}: {rng.choice(self.material.sentences)}\n",
                rename=rng.random() < 0.5,
            )
        elif roll < 0.82 and files:
            source = rng.choice(files)
            source.rename(source.with_name(f"r{self.next_edit('rename')}-{source.name}"))
        elif files and len(files) > self.args.watch_min:
            rng.choice(files).unlink()
            self.next_edit("delete")

    def next_edit(self, kind: str) -> int:
        with self.lock:
            self.edits[kind] += 1
            return sum(self.edits.values())

    def edit_ingested(self) -> None:
        """Between two ingest runs: change, add and remove some of the ingested folder's files."""
        files = sorted(self.ingested.rglob("*.txt"))
        for target in self.rng.sample(files, min(self.args.ingest_edits, len(files))):
            with target.open("a") as f:
                f.write(f"\n\nLater: {self.rng.choice(self.material.sentences)}\n")
            self.edits["ingested change"] += 1
        for _ in range(min(5, len(self.material.ingest_reserve))):
            source = self.material.ingest_reserve.pop()
            shutil.copy(source, self.ingested / source.parent.name / source.name)
            self.edits["ingested add"] += 1
        for target in self.rng.sample(files, min(2, len(files))):
            target.unlink()
            self.edits["ingested delete"] += 1

    def ingest_command(self) -> list[str]:
        return [sys.executable, "-m", "qa", "ingest", "--quiet", "--prune", str(self.ingested)]

    def run_ingests(self, stop: threading.Event) -> None:
        """`qa ingest` of the ingested folder, restarted as it ends and killed with kill -9 at random moments."""
        next_kill = time.monotonic() + self.rng.uniform(self.args.kill_min, self.args.kill_max)
        with self.ingest_log.open("ab") as log:
            while not stop.is_set():
                if self.ingest_runs["started"]:
                    self.edit_ingested()
                self.process = subprocess.Popen(
                    self.ingest_command(), env={**os.environ, **self.env}, stdout=log, stderr=log
                )
                self.ingest_runs["started"] += 1
                while self.process.poll() is None and not stop.is_set() and time.monotonic() < next_kill:
                    stop.wait(0.2)  # watching a child process
                if self.process.poll() is None:
                    self.process.send_signal(signal.SIGKILL)
                    self.process.wait()
                    self.ingest_runs["killed"] += 1
                    note(f"ingest: kill -9 (run {self.ingest_runs['started']})")
                    next_kill = time.monotonic() + self.rng.uniform(self.args.kill_min, self.args.kill_max)
                else:
                    self.ingest_runs[f"exit {self.process.returncode}"] += 1
                    if time.monotonic() >= next_kill:  # the kill fell between two runs
                        next_kill = time.monotonic() + self.rng.uniform(self.args.kill_min, self.args.kill_max)

    def final_ingest(self) -> int:
        """One last ingest, not killed: the ingested folder must then be in the index exactly."""
        with self.ingest_log.open("ab") as log:
            done = subprocess.run(self.ingest_command(), env={**os.environ, **self.env}, stdout=log, stderr=log)
        return done.returncode


def place(path: Path, text: str, rename: bool) -> None:
    """Write a file in place, or write it beside and rename it in (as editors and rsync do)."""
    if rename:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    else:
        path.write_text(text)


# -- setting up -------------------------------------------------------------------------------------------------
def prepare(args: argparse.Namespace, root: Path) -> Material:
    """Copy BBC articles into the watched and ingested folders; the rest feeds uploads, questions and additions."""
    files = sorted(p for category in CATEGORIES for p in (args.corpus / category).glob("*.txt"))
    rng = random.Random(args.seed)
    rng.shuffle(files)
    watched_start, watch_reserve = files[: args.watch_start], files[args.watch_start : args.watch_start + 600]
    rest = files[args.watch_start + 600 :]
    ingest_start, ingest_reserve = rest[: args.ingest_start], rest[args.ingest_start : args.ingest_start + 300]
    upload_files = rest[args.ingest_start + 300 :]
    for folder, chosen in (("watched", watched_start), ("ingested", ingest_start)):
        for category in CATEGORIES:
            (root / folder / category).mkdir(parents=True, exist_ok=True)
        for source in chosen:
            shutil.copy(source, root / folder / source.parent.name / source.name)
    upload_texts = [p.read_text(errors="replace") for p in upload_files]
    sentences = [
        s.strip()
        for text in upload_texts
        for s in re.split(r"(?<=[.!?])\s+", text)
        if 40 <= len(s.strip()) <= 300 and "\n" not in s.strip()
    ]
    words = sorted({w.strip(".,;:\"'()") for s in sentences for w in s.split() if len(w) > 4 and w.isalpha()})
    return Material(sentences, words, upload_texts, watch_reserve, ingest_reserve)


# -- checking ---------------------------------------------------------------------------------------------------
def expected_articles(folder: Path, corpus_dir: Path, index: Path) -> dict[str, str]:
    """What a folder's files hold: article id -> content hash (qa's own reader)."""
    read = read_paths([folder], [folder], corpus_dir, index)
    return {a.id: a.content_hash() for a in read.articles}


def stored_under(db: sqlite3.Connection, folder: Path) -> dict[str, str]:
    """Articles in the index read from files under `folder`: id -> content hash."""
    rows = db.execute("SELECT id, content_hash FROM articles WHERE file LIKE ?", (f"{folder}/%",)).fetchall()
    return {r[0]: r[1] for r in rows}


def differences(expected: dict[str, str], stored: dict[str, str]) -> dict[str, list[str]]:
    return {
        "missing": sorted(expected.keys() - stored.keys())[:10],
        "extra": sorted(stored.keys() - expected.keys())[:10],
        "different": sorted(k for k in expected.keys() & stored.keys() if expected[k] != stored[k])[:10],
    }


def read_only(index: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{index / 'qa.sqlite3'}?mode=ro", uri=True, timeout=60)


def settle_watched(folders: Folders, index: Path, timeout: float) -> tuple[bool, float, dict[str, list[str]]]:
    """Wait until the watcher has applied every change (the index holds what the folder holds)."""
    expected = expected_articles(folders.watched, folders.watched, index)
    started = time.monotonic()
    while True:
        with read_only(index) as db:
            diff = differences(expected, stored_under(db, folders.watched))
        db.close()
        if not any(diff.values()):
            return True, time.monotonic() - started, diff
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started, diff
        time.sleep(1)  # waiting for the watcher of a running server


def check_through_api(client: httpx.Client, ledger: Ledger) -> dict[str, Any]:
    """Every acknowledged write read back, the article list without duplicates, deleted uploads never found."""
    missed: list[str] = []
    for article_id in sorted((ledger.present.keys() | ledger.deleted.keys()) - ledger.uncertain):
        response = client.get(f"/api/articles/{article_id}")
        missed += check_one(article_id, ledger.present.get(article_id), response)
    ids: list[str] = []
    offset = 0
    while True:
        page = client.get("/api/articles", params={"offset": offset, "limit": 200}).json()["articles"]
        ids += [a["id"] for a in page]
        offset += 200
        if len(page) < 200:
            break
    counted = client.get("/healthz").json()["articles"]
    cited_deleted = []
    for article_id in sorted(ledger.deleted.keys() - ledger.uncertain)[:50]:
        gone = ledger.deleted[article_id]
        marker = re.search(r"zq\d+soak", gone.text) if gone is not None else None
        if marker is None:
            continue
        hits = client.get("/api/search", params={"q": marker.group(), "top_k": 10}).json()["results"]
        cited_deleted += [article_id for h in hits if h["article_id"] == article_id]
    return {
        "checked_ids": len((ledger.present.keys() | ledger.deleted.keys()) - ledger.uncertain),
        "misses": missed,
        "listed": len(ids),
        "listed_distinct": len(set(ids)),
        "healthz_articles": counted,
        "deleted_still_found_by_search": sorted(set(cited_deleted)),
    }


def check_index(index: Path, folders: Folders, ledger: Ledger) -> dict[str, Any]:
    """The index folder itself, with no server running: consistency, duplicates, and who holds each article."""
    backend = FaissSqliteBackend(Settings(index_dir=index))
    consistent = backend.consistent()
    faiss_ids = backend.vectors().ids()
    with read_only(index) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        passage_dupes = db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM passages GROUP BY article_id, ordinal HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        orphans = db.execute(
            "SELECT COUNT(*) FROM passages p WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = p.article_id)"
        ).fetchone()[0]
        empty = db.execute(
            "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.id)"
        ).fetchone()[0]
        articles, passages = (db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("articles", "passages"))
        uploads = {r[0]: r[1] for r in db.execute("SELECT id, content_hash FROM articles WHERE file IS NULL")}
        watched = stored_under(db, folders.watched)
        ingested = stored_under(db, folders.ingested)
    db.close()
    fts = "ok"
    with sqlite3.connect(index / "qa.sqlite3") as writable:
        try:
            writable.execute("INSERT INTO passages_fts(passages_fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as e:
            fts = str(e)
    writable.close()
    expected_uploads = {i: a.content_hash() for i, a in ledger.present.items() if i not in ledger.uncertain}
    stored_uploads = {i: h for i, h in uploads.items() if i not in ledger.uncertain}
    return {
        "articles": articles,
        "passages": passages,
        "consistent": consistent,
        "integrity_check": integrity,
        "fts_integrity_check": fts,
        "faiss_ids": len(faiss_ids),
        "faiss_duplicate_ids": int(len(faiss_ids) - len(set(faiss_ids.tolist()))),
        "duplicate_passages": passage_dupes,
        "orphan_passages": orphans,
        "articles_without_passages": empty,
        "uploads_vs_ledger": differences(expected_uploads, stored_uploads),
        "watched_vs_folder": differences(expected_articles(folders.watched, folders.watched, index), watched),
        "ingested_vs_folder": differences(expected_articles(folders.ingested, folders.watched, index), ingested),
        "articles_accounted_for": len(uploads) + len(watched) + len(ingested) == articles,
    }


# -- the run ----------------------------------------------------------------------------------------------------
class Memory:
    """The server's memory, sampled every 10 s: (seconds since the start, bytes)."""

    def __init__(self, pid: int, started: float) -> None:
        self.pid, self.started = pid, started
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self.started, process_tree_rss(self.pid)))
            if self._stop.wait(10):  # the sampling interval
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def median_between(self, start: float, end: float) -> int:
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return int(statistics.median(inside)) if inside else 0


def soak(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    key = secrets.token_urlsafe(16)
    index = root / "index"
    material = prepare(args, root)
    env = {"QA_INDEX_DIR": str(index), "QA_CORPUS_DIR": str(root / "watched"), "QA_API_KEY": key, "QA_RATE_LIMIT": "0"}
    folders = Folders(args, root, env, material)
    note(
        f"set up in {root}: {len(folders.watched_files())} watched files, {args.ingest_start} to ingest; "
        "starting qa serve --ingest --watch"
    )
    load_averages: list[tuple[float, ...]] = [os.getloadavg()]
    with served_process(index, timeout=1800, env=env, args=["--ingest", "--watch"], log_file=root / "server.log") as (
        client,
        server,
    ):
        client.timeout = httpx.Timeout(args.request_timeout)
        started = time.monotonic()
        duration, warmup = args.minutes * 60, args.warmup * 60
        memory = Memory(server.pid, started)
        actors = Actors(args, str(client.base_url), key, material, folders)
        stop_ingests = threading.Event()
        ingests = threading.Thread(target=folders.run_ingests, args=(stop_ingests,), daemon=True)
        actors.start()
        ingests.start()
        while (elapsed := time.monotonic() - started) < duration:
            time.sleep(min(60, duration - elapsed))  # the progress interval
            load_averages.append(os.getloadavg())
            s = actors.ledger.statuses
            note(
                f"{(time.monotonic() - started) / 60:.0f} min: "
                + ", ".join(f"{k} {dict(v)}" for k, v in sorted(s.items()))
                + f"; failures {len(actors.ledger.failures)}; ingests {dict(folders.ingest_runs)}; "
                f"watched edits {dict(folders.edits)}; RSS {memory.samples[-1][1] / 2**20:.0f} MB"
            )
        actors.join()
        stop_ingests.set()
        ingests.join()
        memory.close()
        note("edits stopped; a last, uninterrupted ingest")
        final_exit = folders.final_ingest()
        settled, settle_s, _ = settle_watched(folders, index, timeout=args.settle)
        note(f"watcher settled: {settled} after {settle_s:.0f} s; reading every acknowledged write back")
        api = check_through_api(client, actors.ledger)
    note("server stopped; checking the index folder")
    index_checks = check_index(index, folders, actors.ledger)
    server_log = (root / "server.log").read_text(errors="replace").splitlines()
    ledger = actors.ledger
    after_warmup = memory.median_between(warmup - 60, warmup)
    end = memory.median_between(duration - 60, duration + 60)
    summary: dict[str, Any] = {
        "minutes": args.minutes,
        "requests": {k: dict(sorted(v.items())) for k, v in sorted(ledger.statuses.items())},
        "latency_ms": {
            k: {"p50": round(1000 * statistics.median(v), 1), "max": round(1000 * max(v), 1)}
            for k, v in sorted(ledger.latencies.items())
        },
        "server_errors": ledger.server_errors,
        "failed_requests": ledger.failures,
        "acknowledged": dict(ledger.acknowledged),
        "uploaded_ids_present": len(ledger.present),
        "uploaded_ids_deleted": len(ledger.deleted),
        "uncertain_ids": sorted(ledger.uncertain),
        "problems_seen_during_the_run": ledger.problems,
        "duplicate_hits": ledger.duplicate_hits,
        "watched_edits": {k: n for k, n in folders.edits.items() if not k.startswith("ingested")},
        "ingested_edits": {k.split()[1]: n for k, n in folders.edits.items() if k.startswith("ingested")},
        "ingest_runs": dict(folders.ingest_runs),
        "final_ingest_exit": final_exit,
        "watcher_settled": settled,
        "watcher_settle_s": round(settle_s, 1),
        "api": api,
        "index": index_checks,
        "server_log": {
            "lines": len(server_log),
            "tracebacks": sum(line.startswith("Traceback") for line in server_log),
            "errors": [line[:200] for line in server_log if "ERROR" in line or "Error" in line][:20],
        },
        "rss_mb": {
            "after_warmup": round(after_warmup / 2**20, 1),
            "end": round(end / 2**20, 1),
            "min": round(min(r for _, r in memory.samples) / 2**20, 1),
            "peak": round(max(r for _, r in memory.samples) / 2**20, 1),
            "samples": len(memory.samples),
            "by_minute": [round(rss / 2**20) for at, rss in memory.samples if int(at) % 60 < 10],
        },
        "rss_growth_pct": round(100 * (end - after_warmup) / after_warmup, 1) if after_warmup else None,
        "load_average_1min": {
            "min": min(a[0] for a in load_averages),
            "median": statistics.median(a[0] for a in load_averages),
            "max": max(a[0] for a in load_averages),
        },
    }
    summary["failures"] = verdict(summary)
    return summary


def verdict(s: dict[str, Any]) -> list[str]:
    """Every correctness condition that failed."""
    failed = []
    if s["server_errors"]:
        failed.append(f"{len(s['server_errors'])} responses were 5xx")
    if s["failed_requests"]:
        failed.append(f"{len(s['failed_requests'])} requests got no response")
    if s["problems_seen_during_the_run"]:
        failed.append(f"{len(s['problems_seen_during_the_run'])} problems seen during the run")
    api, index = s["api"], s["index"]
    if api["misses"]:
        failed.append(f"{len(api['misses'])} acknowledged writes not as acknowledged: {api['misses'][:3]}")
    if api["listed"] != api["listed_distinct"] or api["listed"] != api["healthz_articles"]:
        failed.append(
            f"article list: {api['listed']} listed, {api['listed_distinct']} distinct, "
            f"{api['healthz_articles']} counted"
        )
    if api["deleted_still_found_by_search"]:
        failed.append(f"deleted uploads still found: {api['deleted_still_found_by_search']}")
    if not index["consistent"] or index["integrity_check"] != "ok" or index["fts_integrity_check"] != "ok":
        failed.append(
            f"index not consistent: {index['consistent']}, {index['integrity_check']}, {index['fts_integrity_check']}"
        )
    for name in ("faiss_duplicate_ids", "duplicate_passages", "orphan_passages", "articles_without_passages"):
        if index[name]:
            failed.append(f"{name}: {index[name]}")
    for name in ("uploads_vs_ledger", "watched_vs_folder", "ingested_vs_folder"):
        if any(index[name].values()):
            failed.append(f"{name}: {index[name]}")
    if not index["articles_accounted_for"]:
        failed.append("some articles are neither uploads nor from the two folders")
    if s["final_ingest_exit"] not in (0, 3):
        failed.append(f"the last ingest exited {s['final_ingest_exit']}")
    if not s["watcher_settled"]:
        failed.append("the watched folder's articles never matched its files")
    if s["rss_growth_pct"] is None or s["rss_growth_pct"] >= 10:
        failed.append(f"server memory grew {s['rss_growth_pct']}% after warm-up")
    return failed


def print_report(s: dict[str, Any]) -> None:
    print(
        f"\nsoak: {s['minutes']} minutes; load average (1 min) median {s['load_average_1min']['median']:.1f}, "
        f"max {s['load_average_1min']['max']:.1f}"
    )
    print("| requests | statuses | p50 / max ms |\n|---|---|---|")
    for kind, statuses in s["requests"].items():
        lat = s["latency_ms"].get(kind, {})
        print(
            f"| {kind} | {', '.join(f'{c}: {n}' for c, n in statuses.items())} | {lat.get('p50')} / {lat.get('max')} |"
        )
    api, index, rss = s["api"], s["index"], s["rss_mb"]
    print("\n| check | result |\n|---|---|")
    rows = [
        ("5xx / requests without a response", f"{len(s['server_errors'])} / {len(s['failed_requests'])}"),
        (
            "acknowledged uploads (201) / deletes (200)",
            f"{s['acknowledged'].get('upload', 0)} / {s['acknowledged'].get('delete', 0)}",
        ),
        ("uploaded ids read back at the end (API)", f"{api['checked_ids']}: {len(api['misses'])} wrong"),
        ("uploads in SQLite vs the ledger", _diff(index["uploads_vs_ledger"])),
        ("deleted uploads still found by search", str(len(api["deleted_still_found_by_search"]))),
        (
            "article list: listed / distinct / /healthz",
            f"{api['listed']} / {api['listed_distinct']} / {api['healthz_articles']}",
        ),
        (
            "duplicate FAISS ids / passages (article, ordinal)",
            f"{index['faiss_duplicate_ids']} / {index['duplicate_passages']}",
        ),
        (
            "consistent() / integrity_check / FTS5 integrity-check",
            f"{index['consistent']} / {index['integrity_check']} / {index['fts_integrity_check']}",
        ),
        (
            "orphan passages / articles without passages",
            f"{index['orphan_passages']} / {index['articles_without_passages']}",
        ),
        (
            "watched folder vs its articles",
            f"{_diff(index['watched_vs_folder'])} (settled in {s['watcher_settle_s']} s); edits {s['watched_edits']}",
        ),
        (
            "ingested folder vs its articles after the last ingest",
            f"{_diff(index['ingested_vs_folder'])}; runs {s['ingest_runs']}, last exit {s['final_ingest_exit']}; "
            f"edits {s['ingested_edits']}",
        ),
        ("index at the end", f"{index['articles']} articles, {index['passages']} passages"),
        (
            "server RSS after warm-up / end / peak",
            f"{rss['after_warmup']} / {rss['end']} / {rss['peak']} MB ({s['rss_growth_pct']}%)",
        ),
        ("server log", f"{s['server_log']['lines']} lines, {s['server_log']['tracebacks']} tracebacks"),
        ("server RSS by minute, MB", ", ".join(map(str, rss["by_minute"]))),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    for failure in s["failures"]:
        print(f"FAILED: {failure}")


def _diff(d: dict[str, list[str]]) -> str:
    return "equal" if not any(d.values()) else ", ".join(f"{k}: {v}" for k, v in d.items() if v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30, help="length of the soak")
    parser.add_argument("--warmup", type=float, default=3, help="minutes before memory is first read")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/bbc-news", help="BBC news folder")
    parser.add_argument("--watch-start", type=int, default=40, help="files in the watched folder at the start")
    parser.add_argument("--watch-min", type=int, default=20, help="fewest files the edits leave in it")
    parser.add_argument("--ingest-start", type=int, default=500, help="files in the ingested folder at the start")
    parser.add_argument("--ingest-edits", type=int, default=20, help="ingested files changed between two runs")
    parser.add_argument("--kill-min", type=float, default=30, help="fewest seconds between two kills")
    parser.add_argument("--kill-max", type=float, default=210, help="most seconds between two kills")
    parser.add_argument("--upload-ids", type=int, default=100, help="ids the uploads cycle through")
    parser.add_argument("--ask-every", type=float, default=2.0, help="seconds between questions (on average)")
    parser.add_argument("--search-every", type=float, default=2.0, help="seconds between searches")
    parser.add_argument("--upload-every", type=float, default=3.0, help="seconds between uploads")
    parser.add_argument("--delete-every", type=float, default=10.0, help="seconds between deletes")
    parser.add_argument("--verify-every", type=float, default=5.0, help="seconds between read-backs")
    parser.add_argument("--edit-every", type=float, default=4.0, help="seconds between watched-folder edits")
    parser.add_argument("--request-timeout", type=float, default=180.0, help="seconds before a request has failed")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds the watcher may take to catch up")
    parser.add_argument("--keep", type=Path, help="keep the index, folders and logs here (must not exist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (args.corpus / "business").is_dir():
        print(
            f"skipped: {args.corpus} is not there (the soak reads ../shared/data/bbc-news); nothing was run",
            file=sys.stderr,
        )
        sys.exit(0)
    args.corpus = args.corpus.resolve()
    if args.keep:
        args.keep.mkdir(parents=True)
        summary = soak(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            summary = soak(args, Path(tmp).resolve())
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
