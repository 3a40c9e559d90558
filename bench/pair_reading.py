"""Experiments for SQuAD 2.0-style abstention: does reading the question and a sentence of its article together
through the packaged model tell answerable questions from unanswerable ones better than their cosine?

    python bench/pair_reading.py                                # frozen model, 4 folds by article (~5 min)
    python bench/pair_reading.py --vector-head                  # a head on the model's vectors (~3 min)
    python bench/pair_reading.py --fine-tune --folds 2          # a reader fine-tuned here (~35 min on 2 cores)
    python bench/pair_reading.py --fine-tune --folds 2 --epochs 1 --top 3 --json

For every question of ../shared/data/squad2-tune: the sentences of its own article closest to it (cosine of the
model's vectors, the best `--top`). Three ways of judging a question and a sentence together:

- frozen (default): the pair through the packaged model's transformer as it is; its [CLS] and mean token
  outputs (of the closest sentence) feed a logistic regression;
- --vector-head: no second reading; a logistic regression on the question's and the sentence's vectors (their
  elementwise product and absolute difference, the cosine and its gap to the closest), over the 10 closest
  sentences, labelled as below: the issue's "small head on the model's own vectors" (each sentence encoded
  alone here; the index reads it in its passage, which gave the scorer's features 0.02 more answer accuracy);
- --fine-tune: the packaged model becomes a cross-encoder (its transformer plus one linear output on [CLS]),
  trained with the training folds' pairs, each labelled by whether the sentence holds an accepted answer
  (every pair of an unanswerable question is a negative). A question's score is its best pair's.

Each is cross-validated BY ARTICLE (`--folds`, seeded). Printed: ROC AUC and, at the threshold that answers
0.85 of the answerable questions, the share of unanswerable ones withheld and the balanced accuracy; beside
the same for the cosine alone. The head and the reader also print how often their best pair holds the answer
(against the closest sentence), and --fine-tune what reading one pair costs against encoding the question
alone on this machine (the cost a reader would add to every `/api/ask`). Nothing is written. Needs
scikit-learn and torch (the [train] extra); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_scorer import Example, answerability_figures, fold_of_titles, read_articles, read_questions

REPO = Path(__file__).resolve().parents[1]
BATCH = 16


@dataclass(frozen=True)
class Pair:
    """A question and one of the closest sentences of its article."""

    question: int
    sentence: str
    holds_answer: bool
    cosine: float
    rank: int
    features: np.ndarray  # question vector * sentence vector, |difference|, cosine, gap to the closest


def closest_pairs(data: Path, top: int, embedder: Any) -> tuple[list[Example], list[Pair]]:
    """The questions, and for each its `top` closest sentences of its own article (closest first)."""
    from qa.text.sentences import sentence_spans

    articles = {a["id"]: a for a in read_articles(data)}
    questions = read_questions(data)
    sentences: dict[str, tuple[list[str], np.ndarray]] = {}
    for article_id, article in sorted(articles.items()):
        text = article["text"]
        found = [text[s:e].strip() for s, e in sentence_spans(text)]
        found = [s for s in found if re.search(r"\w", s)]
        sentences[article_id] = (found, embedder.encode(found))
    print(f"{len(articles)} articles' sentences encoded", file=sys.stderr, flush=True)
    pairs = []
    for i, (q, vector) in enumerate(zip(questions, embedder.encode([q.question for q in questions]), strict=True)):
        texts, vectors = sentences[q.article_id]
        scores = vectors @ vector
        answers = [a.lower() for a in q.answers] if q.answerable else []
        order = np.argsort(-scores, kind="stable")[:top]
        for rank, j in enumerate(order):
            text, cosine = texts[int(j)], float(scores[j])
            features = np.concatenate(
                [vector * vectors[j], np.abs(vector - vectors[j]), [cosine, cosine - scores[order[0]]]]
            ).astype(np.float32)
            pairs.append(Pair(i, text, any(a in text.lower() for a in answers), cosine, rank, features))
    return questions, pairs


def fold_of_questions(questions: list[Example], folds: int, seed: int) -> np.ndarray:
    """Each question's fold: its article's, articles dealt round the folds as bench/train_scorer.py deals them."""
    fold_of = fold_of_titles([q.article_id for q in questions], folds, seed)
    return np.array([fold_of[q.article_id.strip().lower()] for q in questions])


def tokenize(tokenizer: Any, questions: list[Example], batch: list[Pair], max_length: int = 128) -> Any:
    """A batch of pairs "question [SEP] sentence" as the model's input (the sentence cut first if too long)."""
    return tokenizer(
        [questions[p.question].question for p in batch],
        [p.sentence for p in batch],
        padding=True,
        truncation="only_second",
        max_length=max_length,
        return_tensors="pt",
    )


def read_frozen(questions: list[Example], pairs: list[Pair], fold: np.ndarray, model: Any) -> np.ndarray:
    """Out-of-fold probabilities from a logistic regression on the frozen model's outputs for the closest pair."""
    import torch
    from sklearn.linear_model import LogisticRegression

    closest = [p for p in pairs if p.rank == 0]
    tokenizer, transformer = model.tokenizer, model[0].auto_model
    rows = []
    with torch.inference_mode():
        for first in range(0, len(closest), 32):
            batch = closest[first : first + 32]
            encoded = tokenize(tokenizer, questions, batch, max_length=256)
            out = transformer(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).float()
            rows.append(torch.cat([out[:, 0], (out * mask).sum(1) / mask.sum(1)], 1).numpy())
            if first % 1024 == 0:
                print(f"{first}/{len(closest)} pairs read", file=sys.stderr, flush=True)
    x = np.concatenate(rows)
    y = np.array([q.answerable for q in questions])
    p = np.zeros(len(y))
    for k in sorted(set(fold.tolist())):
        train, test = fold != k, fold == k
        mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        fitted = LogisticRegression(C=0.1, max_iter=3000).fit((x[train] - mean) / scale, y[train])
        p[test] = fitted.predict_proba((x[test] - mean) / scale)[:, 1]
    return p


def vector_head(pairs: list[Pair], fold: np.ndarray) -> np.ndarray:
    """Out-of-fold log-odds of a logistic regression on each pair's vector features."""
    from sklearn.linear_model import LogisticRegression

    x = np.stack([p.features for p in pairs])
    y = np.array([p.holds_answer for p in pairs])
    of = fold[[p.question for p in pairs]]
    logits = np.zeros(len(pairs))
    for k in sorted(set(of.tolist())):
        train, test = of != k, of == k
        fitted = LogisticRegression(C=0.05, max_iter=3000).fit(x[train], y[train])
        logits[test] = fitted.decision_function(x[test])
        print(f"fold {k + 1} fitted", file=sys.stderr, flush=True)
    return logits


def fine_tune(questions: list[Example], train: list[Pair], model: Any, epochs: float, seed: int) -> tuple[Any, Any]:
    """The packaged transformer plus a linear output on [CLS], trained on `train` (a copy: the model is kept)."""
    import copy

    import torch

    torch.manual_seed(seed)
    encoder = copy.deepcopy(model[0].auto_model)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    encoder.get_input_embeddings().weight.requires_grad = False  # 30k rows of word vectors: kept as they are
    parameters = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=4e-5, weight_decay=0.01)
    steps = max(1, int(len(train) * epochs / BATCH))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps)
    )
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < steps * BATCH:
        shuffled = list(range(len(train)))
        rng.shuffle(shuffled)
        order += shuffled
    encoder.train()
    started = time.monotonic()
    for step in range(steps):
        batch = [train[k] for k in order[step * BATCH : (step + 1) * BATCH]]
        encoded = tokenize(model.tokenizer, questions, batch)
        logits = head(encoder(**encoded).last_hidden_state[:, 0]).squeeze(-1)
        target = torch.tensor([float(p.holds_answer) for p in batch])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps}, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    encoder.eval()
    return encoder, head


def read_pairs(questions: list[Example], pairs: list[Pair], tokenizer: Any, encoder: Any, head: Any) -> list[float]:
    """The fine-tuned reader's log-odds for each pair."""
    import torch

    out: list[float] = []
    with torch.inference_mode():
        for first in range(0, len(pairs), 64):
            batch = pairs[first : first + 64]
            encoded = tokenize(tokenizer, questions, batch)
            out += head(encoder(**encoded).last_hidden_state[:, 0]).squeeze(-1).tolist()
    return out


def best_pairs(questions: list[Example], pairs: list[Pair], logits: list[float], name: str) -> dict[str, Any]:
    """Figures for each question's best pair by `logits`: as answerability, and as the sentence that leads."""
    y = np.array([q.answerable for q in questions])
    best = np.full(len(questions), -np.inf)
    best_holds, closest_holds, any_holds = (np.zeros(len(questions), dtype=bool) for _ in range(3))
    for p, logit in zip(pairs, logits, strict=True):
        if logit > best[p.question]:
            best[p.question], best_holds[p.question] = logit, p.holds_answer
        closest_holds[p.question] |= p.rank == 0 and p.holds_answer
        any_holds[p.question] |= p.holds_answer
    return {
        name: answerability_figures(y, best),
        "answer in the best pair": round(float(best_holds[y].mean()), 3),
        "answer in the closest sentence": round(float(closest_holds[y].mean()), 3),
        "answer in any of the pairs": round(float(any_holds[y].mean()), 3),
    }


def cost_of_reading(questions: list[Example], pairs: list[Pair], model: Any) -> dict[str, float]:
    """Median milliseconds to encode a question alone and to read it with its closest sentence (one pair)."""
    import torch

    transformer, tokenizer = model[0].auto_model, model.tokenizer
    closest = [p for p in pairs if p.rank == 0][:200]
    alone: list[float] = []
    pair: list[float] = []
    with torch.inference_mode():
        for p in closest:
            question = questions[p.question].question
            for texts, times in (((question,), alone), ((question, p.sentence), pair)):
                encoded = tokenizer(*[[t] for t in texts], truncation=True, max_length=128, return_tensors="pt")
                started = time.perf_counter()
                transformer(**encoded)
                times.append((time.perf_counter() - started) * 1000)
    return {"question_alone_ms": round(statistics.median(alone), 1), "one_pair_ms": round(statistics.median(pair), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/squad2-tune")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--fine-tune", action="store_true", help="train a cross-encoder on the training folds")
    parser.add_argument("--vector-head", action="store_true", help="a logistic head on the model's vectors")
    parser.add_argument("--epochs", type=float, default=2.0, help="passes over the training pairs (--fine-tune)")
    parser.add_argument("--top", type=int, default=3, help="closest sentences read per question (--fine-tune)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not (args.data / "questions.jsonl").exists():
        print(f"{args.data} is not here; nothing to run", file=sys.stderr)
        return

    from qa import Settings
    from qa.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(Settings().model)
    model: Any = embedder._model
    top = 10 if args.vector_head else args.top if args.fine_tune else 1
    questions, pairs = closest_pairs(args.data, top, embedder)
    fold = fold_of_questions(questions, args.folds, args.seed)
    y = np.array([q.answerable for q in questions])
    cosine = np.array([p.cosine for p in pairs if p.rank == 0])
    result: dict[str, Any] = {"cosine of the closest sentence": answerability_figures(y, cosine)}
    if not (args.fine_tune or args.vector_head):
        result["pair read by the model (frozen)"] = answerability_figures(y, read_frozen(questions, pairs, fold, model))
    else:
        if args.vector_head:
            name, logits = f"a head on the model's vectors (best of {top})", vector_head(pairs, fold).tolist()
        else:
            name, logits = f"pair read by a reader fine-tuned here (best of {top})", [0.0] * len(pairs)
            for k in range(args.folds):
                print(f"fold {k + 1}/{args.folds}", file=sys.stderr, flush=True)
                train = [p for p in pairs if fold[p.question] != k]
                test = [i for i, p in enumerate(pairs) if fold[p.question] == k]
                encoder, head = fine_tune(questions, train, model, args.epochs, args.seed + k)
                read = read_pairs(questions, [pairs[i] for i in test], model.tokenizer, encoder, head)
                for i, logit in zip(test, read, strict=True):
                    logits[i] = logit
        result.update(best_pairs(questions, pairs, logits, name))
        if args.fine_tune:
            result["cost on this machine"] = cost_of_reading(questions, pairs, model)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| signal | ROC AUC | answered when answerable | abstained when not | balanced accuracy |")
    print("|---|---|---|---|---|")
    for name, f in result.items():
        if isinstance(f, dict) and "auc" in f:
            row = [f["auc"], f["answered_when_answerable"], f["abstained_when_not"], f["balanced"]]
            print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    for name, f in result.items():
        if not (isinstance(f, dict) and "auc" in f):
            print(f"{name}: {f}")


if __name__ == "__main__":
    main()
