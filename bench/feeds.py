"""What a feed poll costs: a local feed of dated stories polled into a fresh index with the real model.

    python bench/feeds.py                  # 50 stories, then 10 new
    python bench/feeds.py --stories 40 --new 20

A site on 127.0.0.1 (tests/sites.py; allowed through QA_FETCH_ALLOW for this run only) serves an RSS feed and
one page per story. The script follows the feed, polls it (every page fetched, read and indexed), polls it again
(the feed answers 304: nothing fetched, nothing written), adds `--new` stories and polls once more, then asks
each story's question and counts the answers that cite it first. Time is split between fetching and reading
pages (robots.txt, HTTP, trafilatura) and indexing them (chunking, embedding, writing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from qa import QA, Settings  # noqa: E402
from qa.sources.feeds import FeedPoller  # noqa: E402
from sites import TOWNS, Site, Story, publish  # noqa: E402


class Timed:
    """Seconds spent in one method of a class, summed over calls."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(owner, name, timed)


def poll(qa: QA, site: Site, label: str, reading: Timed, indexing: Timed) -> dict[str, Any]:
    pages_before = sum(n for path, n in site.requests.items() if path.startswith("/news/"))
    reading.seconds = indexing.seconds = 0.0
    start = time.perf_counter()
    [report] = qa.poll_feeds()
    seconds = time.perf_counter() - start
    pages = sum(n for path, n in site.requests.items() if path.startswith("/news/")) - pages_before
    return {
        "poll": label,
        "seconds": round(seconds, 2),
        "pages fetched": pages,
        "fetch and read s": round(reading.seconds, 2),
        "index s": round(indexing.seconds, 2),
        "result": report.outcome(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=50, help=f"stories in the first poll (at most {len(TOWNS)})")
    parser.add_argument("--new", type=int, default=10, help="stories added before the third poll")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    total = args.stories + args.new
    if total > len(TOWNS):
        parser.error(f"--stories + --new is at most {len(TOWNS)}")
    reading, indexing = Timed(FeedPoller, "_read"), Timed(FeedPoller, "_write")
    site = Site().start()
    stories = [Story(n, 3 + n) for n in range(total)]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="qa-bench-feeds-") as folder:
            qa = QA(Settings(index_dir=Path(folder) / "index", fetch_allow=["127.0.0.1"]))
            qa.embedder  # load the model before the clock runs  # noqa: B018
            publish(site, stories[: args.stories])
            qa.follow_feed(site.url("/feed.xml"))
            rows.append(poll(qa, site, f"first ({args.stories} new)", reading, indexing))
            rows.append(poll(qa, site, "again, nothing new", reading, indexing))
            publish(site, stories)
            rows.append(poll(qa, site, f"{args.new} new", reading, indexing))
            cited = 0
            for story in stories:
                answer = qa.ask(story.question)
                cited += bool(answer.citations) and answer.citations[0].article_id == story.article_id(site)
    finally:
        site.stop()
    if args.json:
        print(json.dumps({"polls": rows, "answered": cited, "stories": total}, indent=2))
        return
    print("| poll | seconds | pages fetched | fetch and read s | index s | result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    print(f"\n{cited} of {total} stories answered with their own article cited first")


if __name__ == "__main__":
    main()
