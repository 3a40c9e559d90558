"""Which way of turning a title into an example question gets it answered from its own article.

    python bench/example_questions.py                       # 300 BBC articles, seed 0
    python bench/example_questions.py --articles 100 --seed 1

Indexes a random sample of ../shared/data/bbc-news (the distractors are the other sampled articles), splits the
sampled articles in two halves BY ARTICLE, picks the template with the best hit rate on the first half and
reports every template on the second. A hit: the question is answered (no abstention) and its first citation is
the article whose title it was made from.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from qa import QA, Settings
from qa.articles.corpus import CorpusFile, default_id, located, read_files
from qa.suggestions import TEMPLATES, example_question

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/bbc-news")
    parser.add_argument("--articles", type=int, default=300, help="articles sampled and indexed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = sorted(p for p in args.data.rglob("*.txt") if p.parent != args.data)
    if not files:
        sys.exit(f"no articles under {args.data}")
    chosen = random.Random(args.seed).sample(files, min(args.articles, len(files)))
    with tempfile.TemporaryDirectory() as folder:
        qa = QA(Settings(index_dir=Path(folder) / "index", corpus_roots=[args.data]))
        started = time.perf_counter()
        found = (CorpusFile(located(file), default_id(file, args.data, args.data)) for file in chosen)
        articles = read_files(found, [args.data]).articles
        qa.indexer.upsert(articles)
        print(f"indexed {len(articles)} articles in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        order = list(articles)
        random.Random(args.seed + 1).shuffle(order)
        halves = {"choose": order[: len(order) // 2], "report": order[len(order) // 2 :]}
        rates: dict[tuple[str, str], tuple[float, int]] = {}
        for half, members in halves.items():
            for name, template in TEMPLATES.items():
                hits = asked = 0
                for article in members:
                    question = example_question(article.title, template)
                    if question is None:
                        continue
                    answer = qa.ask(question)
                    asked += 1
                    hits += not answer.abstained and answer.citations[0].article_id == article.id
                rates[half, name] = (hits / asked if asked else 0.0, asked)
        best = max(TEMPLATES, key=lambda name: rates["choose", name][0])
        print("| template | hit rate, choosing half | hit rate, report half (n) |")
        print("|---|---|---|")
        for name, template in TEMPLATES.items():
            mark = " (chosen)" if name == best else ""
            choose, report = rates["choose", name], rates["report", name]
            print(f"| `{template}`{mark} | {choose[0]:.3f} | {report[0]:.3f} ({report[1]}) |")


if __name__ == "__main__":
    main()
