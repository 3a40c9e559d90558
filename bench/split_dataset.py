"""Split a dataset by article into two halves: one to index, one whose questions are off-topic.

    python bench/split_dataset.py ../shared/data/squad-tune /tmp/squad-split
    qa eval /tmp/squad-split/indexed --offtopic /tmp/squad-split/offtopic

Articles alternate between the halves (in file order), so both cover similar subjects and sizes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def split(source: Path, target: Path) -> dict[str, int]:
    """Write target/indexed and target/offtopic; returns the question counts."""
    articles = [json.loads(line) for line in (source / "articles.jsonl").read_text().splitlines() if line.strip()]
    questions = [json.loads(line) for line in (source / "questions.jsonl").read_text().splitlines() if line.strip()]
    halves = {"indexed": articles[0::2], "offtopic": articles[1::2]}
    counts = {}
    for name, chosen in halves.items():
        folder = target / name
        folder.mkdir(parents=True, exist_ok=True)
        ids = {a["id"] for a in chosen}
        picked = [q for q in questions if q["article_id"] in ids]
        (folder / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in chosen))
        (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in picked))
        counts[name] = len(picked)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="dataset folder (articles.jsonl, questions.jsonl)")
    parser.add_argument("target", type=Path, help="where to write indexed/ and offtopic/")
    args = parser.parse_args()
    print(split(args.source, args.target))


if __name__ == "__main__":
    main()
