"""An experiment for SQuAD 2.0-style abstention: does reading the question and its best sentence together through
the packaged model (frozen) tell answerable questions from unanswerable ones better than their cosine?

    python bench/pair_reading.py                      # ../shared/data/squad2-tune, 4 folds by article
    python bench/pair_reading.py --folds 4 --seed 13 --json

For every question of squad2-tune: the sentence of its own article closest to it (cosine of the model's
vectors), then the pair "question [SEP] sentence" through the model's transformer, its [CLS] and mean token
outputs as features. A logistic regression is trained on them by k-fold cross-validation BY ARTICLE; printed:
ROC AUC and, at the threshold that answers 0.85 of the answerable questions, the share of unanswerable ones
withheld and the balanced accuracy; beside the same for the cosine alone. Nothing is written. Needs
scikit-learn (the [train] extra). About 5 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    threshold = np.quantile(p[y], 0.15)
    answered, withheld = float((p[y] >= threshold).mean()), float((p[~y] < threshold).mean())
    return {
        "auc": round(float(roc_auc_score(y, p)), 3),
        "answered_when_answerable": round(answered, 3),
        "abstained_when_not": round(withheld, 3),
        "balanced": round((answered + withheld) / 2, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/squad2-tune")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (args.data / "questions.jsonl").exists():
        print(f"{args.data} is not here; nothing to run", file=sys.stderr)
        return

    import torch
    from sklearn.linear_model import LogisticRegression

    from qa import Settings
    from qa.embedding import SentenceTransformerEmbedder
    from qa.text.sentences import sentence_spans

    articles = {a["id"]: a for a in map(json.loads, (args.data / "articles.jsonl").read_text().splitlines())}
    questions = [json.loads(line) for line in (args.data / "questions.jsonl").read_text().splitlines()]
    embedder = SentenceTransformerEmbedder(Settings().model)
    sentences: dict[str, tuple[list[str], np.ndarray]] = {}
    for article_id, article in articles.items():
        text = article["text"]
        found = [text[s:e].strip() for s, e in sentence_spans(text)]
        found = [s for s in found if re.search(r"\w", s)]
        sentences[article_id] = (found, embedder.encode(found))
    question_vectors = embedder.encode([q["question"] for q in questions])
    best, cosine = [], []
    for q, vector in zip(questions, question_vectors, strict=True):
        texts, vectors = sentences[q["article_id"]]
        scores = vectors @ vector
        best.append(texts[int(scores.argmax())])
        cosine.append(float(scores.max()))

    model: Any = embedder._model
    tokenizer, transformer = model.tokenizer, model[0].auto_model
    rows = []
    with torch.inference_mode():
        for first in range(0, len(questions), 32):
            batch = slice(first, first + 32)
            encoded = tokenizer(
                [q["question"] for q in questions[batch]],
                best[batch],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            out = transformer(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).float()
            rows.append(torch.cat([out[:, 0], (out * mask).sum(1) / mask.sum(1)], 1).numpy())
            if first % 1024 == 0:
                print(f"{first}/{len(questions)} pairs read", file=sys.stderr, flush=True)
    x = np.concatenate(rows)
    y = np.array([q["answerable"] for q in questions])
    titles = sorted(articles)
    random.Random(args.seed).shuffle(titles)
    fold_of = {t: i % args.folds for i, t in enumerate(titles)}
    folds = np.array([fold_of[q["article_id"]] for q in questions])
    p = np.zeros(len(y))
    for k in range(args.folds):
        train, test = folds != k, folds == k
        mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        fitted = LogisticRegression(C=0.1, max_iter=3000).fit((x[train] - mean) / scale, y[train])
        p[test] = fitted.predict_proba((x[test] - mean) / scale)[:, 1]
    result = {"cosine of the best sentence": figures(y, np.array(cosine)), "pair read by the model": figures(y, p)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| signal | ROC AUC | answered when answerable | abstained when not | balanced accuracy |")
    print("|---|---|---|---|---|")
    for name, f in result.items():
        row = [f["auc"], f["answered_when_answerable"], f["abstained_when_not"], f["balanced"]]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
