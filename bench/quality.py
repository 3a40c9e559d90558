"""Answer quality on ../shared/data/squad-tune, every figure of the README's quality table, by `qa eval`.

    python bench/quality.py                 # all rows (about 30 minutes on 2 cores)
    python bench/quality.py --only default  # one row

Rows: the default settings; reciprocal-rank fusion instead of score fusion; no sentence re-ranking; smaller
and larger passages; BBC News articles added as distractors; abstention on a split of the data set (half the
articles indexed, the other half's questions off-topic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SQUAD = SHARED / "squad-tune"
BBC = SHARED / "bbc-news"

ROWS: dict[str, tuple[dict[str, str], list[str]]] = {
    "default": ({}, []),
    "rrf fusion": ({"QA_FUSION": "rrf"}, []),
    "no re-ranking": ({"QA_RERANK_DEPTH": "0"}, []),
    "passages ≤ 128 word pieces": ({"QA_CHUNK_TOKENS": "128"}, []),
    "passages ≤ 256 word pieces": ({"QA_CHUNK_TOKENS": "256"}, []),
    "+ 2,225 BBC distractors": ({}, ["--distractors", str(BBC)]),
}


def evaluate(dataset: Path, env: dict[str, str], extra: list[str]) -> dict[str, object]:
    command = [sys.executable, "-m", "qa", "eval", str(dataset), "--json", *extra]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=REPO)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def row(name: str, r: dict[str, object]) -> str:
    hits = r["hits"]
    assert isinstance(hits, dict)
    abst = r.get("abstention_accuracy")
    return (
        f"| {name} | {r['mean_passage_words']} | {hits['hit@1']:.3f} | {hits['hit@5']:.3f} | {hits['hit@20']:.3f} "
        f"| {r['mrr']:.3f} | {r['answer_accuracy']:.3f} | {'-' if abst is None else f'{abst:.3f}'} "
        f"| {r['latency_ms']['p50']} |"  # type: ignore[index]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="row names to run (default: all, plus abstention)")
    args = parser.parse_args()
    if not SQUAD.exists():
        sys.exit(f"{SQUAD} is not here")
    print("| setting | passage words | hit@1 | hit@5 | hit@20 | MRR | answer acc. | abstention acc. | p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (env, extra) in ROWS.items():
        if args.only and name not in args.only:
            continue
        print(row(name, evaluate(SQUAD, env, extra)), flush=True)
    if not args.only or "abstention" in args.only:
        sys.path.insert(0, str(REPO / "bench"))
        from split_dataset import split

        with tempfile.TemporaryDirectory() as tmp:
            split(SQUAD, Path(tmp))
            result = evaluate(Path(tmp) / "indexed", {}, ["--offtopic", str(Path(tmp) / "offtopic")])
            print(row("half indexed, other half off-topic", result), flush=True)


if __name__ == "__main__":
    main()
