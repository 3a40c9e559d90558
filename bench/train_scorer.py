"""Train the answer scorer (src/qa/answering/scorer_weights.json) from question sets, reproducibly.

    python bench/train_scorer.py collect         # features of every question's candidates (about an hour)
    python bench/train_scorer.py fit             # train, cross-validate, choose the threshold, write weights
    python bench/train_scorer.py cv              # the cross-validated table only (no weights written)
    python bench/train_scorer.py answerable      # an experiment: a model of answerability alone (nothing written)

`collect` indexes each source's articles, asks every question through the same code as /api/ask (QA.head:
hybrid retrieval, the re-ranking head, sentence features) and stores each candidate sentence's features with
its label (it holds an accepted answer, or overlaps the gold rationale). Each question is asked twice: with
its article indexed (on-topic), and with its fold's articles removed from the index (off-topic, a negative).
Folds group articles BY TITLE (squad-tune and squad2-tune share 17 titles, so both versions of an article
fall in the same fold), seeded.

`fit` trains the sentence model (does this sentence hold the answer?) and the answer model (is the answer led
by the best sentence right?), each by k-fold cross-validation by article: out-of-fold predictions give every
figure it prints, the calibration (isotonic) and the abstention threshold; the shipped models are then
trained on everything. Same data and seed, same bytes: nothing depends on time, order of files or threads.

Sources are listed in SOURCES; a new one is a folder reader returning Examples (see `read_coqa_first_turns`).
Training needs scikit-learn (`pip install -c constraints.txt -e '.[train]'`); serving does not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / "bench" / "results" / "scorer"
WEIGHTS = REPO / "src" / "qa" / "answering" / "scorer_weights.json"
SEED = 13
FOLDS = 4
Indices = Sequence[int] | np.ndarray
TOP_K = 5  # the answer is composed from the first top_k passages, as /api/ask's default


@dataclass(frozen=True)
class Example:
    """One question and what counts as a right answer to it."""

    id: str
    question: str
    article_id: str
    answers: tuple[str, ...] = ()
    span: tuple[int, int] | None = None  # the gold rationale's offsets in the article
    answerable: bool = True


@dataclass(frozen=True)
class Source:
    """A question set: a folder with articles.jsonl and a reader for its questions."""

    name: str
    folder: str  # under the data folder
    read: Callable[[Path], list[Example]]


def read_questions(folder: Path) -> list[Example]:
    """SQuAD-style questions.jsonl: id, question, article_id, answers, answerable."""
    examples = []
    for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            answers = tuple(a for a in q.get("answers", []) if a.strip())
            examples.append(Example(q["id"], q["question"], q["article_id"], answers, None, q.get("answerable", True)))
    return examples


def read_coqa_first_turns(folder: Path) -> list[Example]:
    """The first turn of each conversation (it stands alone), right when a sentence overlaps the rationale."""
    examples = []
    for line in (folder / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        conversation = json.loads(line)
        turn = conversation["turns"][0]
        span = (int(turn["span_start"]), int(turn["span_end"]))
        examples.append(
            Example(
                f"{conversation['id']}-1",
                turn["question"],
                conversation["article_id"],
                (),
                span,
                bool(turn.get("answerable", True)),
            )
        )
    return examples


SOURCES = {
    "squad": Source("squad", "squad-tune", read_questions),
    "squad2": Source("squad2", "squad2-tune", read_questions),
    "coqa": Source("coqa", "coqa-wiki", read_coqa_first_turns),
}


def read_articles(folder: Path) -> list[dict[str, Any]]:
    """articles.jsonl as dicts, in file order."""
    lines = (folder / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def fold_of_titles(titles: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """Each title's fold: titles sorted, shuffled by the seed, dealt round-robin."""
    unique = sorted({t.strip().lower() for t in titles})
    random.Random(seed).shuffle(unique)
    return {title: i % folds for i, title in enumerate(unique)}


# -- collect ---------------------------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


class Collector:
    """Accumulates one source's instances (a question asked on- or off-topic) and their sentences."""

    def __init__(self) -> None:
        self.instances: list[dict[str, Any]] = []
        self.features: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.owners: list[np.ndarray] = []
        self.fused: list[np.ndarray] = []
        self.passage_labels: list[np.ndarray] = []
        self.articles: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.question_values: list[np.ndarray] = []

    def add(self, example: Example, fold: int, topic: str, table: Any, rest: Sequence[Any]) -> None:
        """Record one asked question: its head's sentences (features, labels) and passages."""
        accepted = [_normalise(a) for a in example.answers]
        candidates = table.candidates
        sentence_labels = []
        for j, (start, end) in enumerate(table.spans):
            passage = candidates[int(table.owner[j])].passage
            sentence_labels.append(_right(example, accepted, passage, start, end))
        passage_labels = [_right(example, accepted, c.passage, c.passage.start, c.passage.end) for c in candidates]
        below = next(
            (rank for rank, c in enumerate(rest, len(candidates)) if _right(example, accepted, c.passage, 0, 0)), -1
        )
        self.instances.append(
            {
                "id": example.id,
                "fold": fold,
                "topic": topic,
                "answerable": example.answerable,
                "sentences": len(table.spans),
                "passages": len(candidates),
                "first_hit_below_head": below,  # rank of the first right passage after the head (-1: none)
            }
        )
        self.features.append(table.features.astype(np.float64))
        self.labels.append(np.array(sentence_labels, dtype=np.int8))
        self.owners.append(np.asarray(table.owner, dtype=np.int32))
        self.fused.append(np.array([c.fused for c in candidates], dtype=np.float64))
        self.passage_labels.append(np.array(passage_labels, dtype=np.int8))
        self.articles.append(np.asarray(table.articles, dtype=np.int32))
        self.starts.append(table.starts)
        self.ends.append(table.ends)
        self.question_values.append(np.asarray(table.question_values, dtype=np.float64).reshape(1, -1))

    def save(self, path: Path) -> None:
        """Write the arrays (npz) and the instances (json lines) next to each other."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path.with_suffix(".npz"),
            features=np.vstack(self.features),
            labels=np.concatenate(self.labels),
            owners=np.concatenate(self.owners),
            fused=np.concatenate(self.fused),
            passage_labels=np.concatenate(self.passage_labels),
            articles=np.concatenate(self.articles),
            starts=np.concatenate(self.starts),
            ends=np.concatenate(self.ends),
            question_values=np.vstack(self.question_values),
        )
        path.with_suffix(".jsonl").write_text("".join(json.dumps(i) + "\n" for i in self.instances))


def _right(example: Example, accepted: Sequence[str], passage: Any, start: int, end: int) -> bool:
    """A span of a passage holds an accepted answer (or overlaps the gold rationale in the right article)."""
    if not example.answerable:
        return False
    if example.span is not None:
        s, e = example.span
        if passage.article_id != example.article_id:
            return False
        if start == end == 0:
            start, end = passage.start, passage.end
        return start < e and s < end
    whole = start == end == 0
    text = passage.text if whole else passage.text[start - passage.start : end - passage.start]
    folded = _normalise(text)
    return any(a in folded for a in accepted)


def collect(source: Source, data: Path, cache: Path, folds: int, seed: int, limit: int | None) -> Path:
    """Ask every question of a source on- and off-topic; write cache/<name>.npz and .jsonl."""
    import torch
    from tqdm import tqdm

    from qa import QA, Settings
    from qa.embedding import load_embedder

    # One thread: the same sums in the same order on every run (bit-for-bit features), and on a shared
    # machine a second spinning thread makes one question's encoding many times slower.
    torch.set_num_threads(1)

    folder = data / source.folder
    articles = read_articles(folder)
    examples = source.read(folder)[:limit]
    fold_by_title = fold_of_titles([a["title"] for a in articles], folds, seed)
    fold_of = {a["id"]: fold_by_title[a["title"].strip().lower()] for a in articles}
    examples = [e for e in examples if e.article_id in fold_of]
    embedder = load_embedder("all-MiniLM-L6-v2")
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="qa-train-") as tmp:
        full = Path(tmp) / "full"
        qa = QA(Settings(index_dir=full), embedder)
        with tqdm(desc=f"{source.name}: indexing", unit="article", file=sys.stderr) as bar:
            qa.ingest([folder / "articles.jsonl"], bar)
        with tqdm(examples, desc=f"{source.name}: on-topic", unit="question", file=sys.stderr) as bar:
            for example in bar:
                table, rest = qa.head(example.question, TOP_K, depth=20)
                collector.add(example, fold_of[example.article_id], "on", table, rest)
        qa.close()
        for fold in range(folds):
            inside = [e for e in examples if fold_of[e.article_id] == fold]
            if not inside:
                continue
            without = Path(tmp) / f"without-{fold}"
            shutil.copytree(full, without)
            qa = QA(Settings(index_dir=without), embedder)
            for article_id in sorted(a for a, f in fold_of.items() if f == fold):
                qa.delete(article_id)
            with tqdm(inside, desc=f"{source.name}: off-topic, fold {fold}", unit="question", file=sys.stderr) as bar:
                for example in bar:
                    table, rest = qa.head(example.question, TOP_K, depth=20)
                    collector.add(example, fold, "off", table, rest)
            qa.close()
    target = cache / source.name
    collector.save(target)
    return target


# -- load ------------------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """Every instance of the chosen sources, with per-sentence and per-passage arrays and their offsets."""

    instances: list[dict[str, Any]]
    features: np.ndarray
    labels: np.ndarray
    owners: np.ndarray
    fused: np.ndarray
    passage_labels: np.ndarray
    articles: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    question_values: np.ndarray
    sentence_start: np.ndarray  # per instance, first row in features
    passage_start: np.ndarray  # per instance, first row in fused

    def rows(self, i: int) -> slice:
        """The sentence rows of instance i."""
        return slice(int(self.sentence_start[i]), int(self.sentence_start[i + 1]))

    def passages(self, i: int) -> slice:
        """The passage rows of instance i."""
        return slice(int(self.passage_start[i]), int(self.passage_start[i + 1]))


def load(cache: Path, names: Sequence[str]) -> Dataset:
    """The cached instances of the named sources, concatenated in the order given."""
    instances: list[dict[str, Any]] = []
    keys = ("features", "labels", "owners", "fused", "passage_labels", "articles", "starts", "ends", "question_values")
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for name in names:
        npz = np.load(cache / f"{name}.npz")
        for key in arrays:
            arrays[key].append(npz[key])
        for line in (cache / f"{name}.jsonl").read_text().splitlines():
            instance = json.loads(line)
            instance["source"] = name
            instances.append(instance)
    sentences = np.array([i["sentences"] for i in instances], dtype=np.int64)
    passages = np.array([i["passages"] for i in instances], dtype=np.int64)
    return Dataset(
        instances,
        np.vstack(arrays["features"]),
        np.concatenate(arrays["labels"]),
        np.concatenate(arrays["owners"]),
        np.concatenate(arrays["fused"]),
        np.concatenate(arrays["passage_labels"]),
        np.concatenate(arrays["articles"]),
        np.concatenate(arrays["starts"]),
        np.concatenate(arrays["ends"]),
        np.vstack(arrays["question_values"]),
        np.concatenate([[0], np.cumsum(sentences)]),
        np.concatenate([[0], np.cumsum(passages)]),
    )


# -- fit -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """How the models are trained: model kinds, their features, and the re-ranking weight."""

    sentence_kind: str = "trees"
    answer_kind: str = "trees"
    sentence_features: tuple[str, ...] = ()
    answer_features: tuple[str, ...] = ()
    rerank_weight: float = -1.0  # negative: chosen by cross-validation among RERANK_WEIGHTS
    trees: int = 150
    leaves: int = 15
    depth: int = 6  # at most this many splits from root to leaf: bounds the serving cost of a tree walk
    learning_rate: float = 0.1
    sentence_negatives: bool = False  # also learn from off-topic and unanswerable questions' sentences
    seed: int = SEED
    max_accuracy_cost: float = 0.01  # the threshold may cost at most this much squad-tune answer accuracy
    chosen_rerank_weight: list[float] = field(default_factory=lambda: [1.0])

    @property
    def weight(self) -> float:
        """The re-ranking weight in use: the recipe's, or the one cross-validation chose."""
        return self.rerank_weight if self.rerank_weight >= 0 else self.chosen_rerank_weight[0]


RERANK_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def default_recipe() -> Recipe:
    """The shipped recipe: every single-question feature (no conversation features yet)."""
    from qa.answering.features import ANSWER_FEATURES, SENTENCE_FEATURES

    return Recipe(sentence_features=SENTENCE_FEATURES, answer_features=ANSWER_FEATURES)


def fit_model(x: np.ndarray, y: np.ndarray, kind: str, names: Sequence[str], recipe: Recipe) -> dict[str, Any]:
    """Train one model and return its JSON form (what qa.answering.scorer.model_from_dict reads)."""
    return fit_with_reference(x, y, kind, names, recipe)[0]


def fit_with_reference(
    x: np.ndarray, y: np.ndarray, kind: str, names: Sequence[str], recipe: Recipe
) -> tuple[dict[str, Any], Callable[[np.ndarray], np.ndarray]]:
    """Train one model: its JSON form, and scikit-learn's own log-odds function for checking the export."""
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        linear = LogisticRegression(C=1.0, max_iter=2000, random_state=recipe.seed)
        linear.fit((x - mean) / scale, y)
        return {
            "kind": "linear",
            "features": list(names),
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": linear.coef_[0].tolist(),
            "intercept": float(linear.intercept_[0]),
        }, lambda rows: np.asarray(linear.decision_function((rows - mean) / scale), dtype=np.float64)
    from sklearn.ensemble import HistGradientBoostingClassifier

    boosted = HistGradientBoostingClassifier(
        max_iter=recipe.trees,
        max_leaf_nodes=recipe.leaves,
        max_depth=recipe.depth,
        learning_rate=recipe.learning_rate,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=recipe.seed,
    )
    boosted.fit(x, y)
    return export_trees(boosted, names), lambda rows: np.asarray(boosted.decision_function(rows), dtype=np.float64)


def export_trees(model: Any, names: Sequence[str]) -> dict[str, Any]:
    """A fitted HistGradientBoostingClassifier as padded node arrays (numpy inference, no scikit-learn)."""
    trees = [predictors[0].nodes for predictors in model._predictors]
    width = max(len(nodes) for nodes in trees)
    shape = (len(trees), width)
    feature = np.zeros(shape, dtype=np.int64)
    threshold = np.zeros(shape, dtype=np.float64)
    left = np.zeros(shape, dtype=np.int64)
    right = np.zeros(shape, dtype=np.int64)
    value = np.zeros(shape, dtype=np.float64)
    depth = 0
    for t, nodes in enumerate(trees):
        for n, node in enumerate(nodes):
            if node["is_leaf"]:
                left[t, n] = right[t, n] = n
                value[t, n] = node["value"]
                depth = max(depth, int(node["depth"]))
            else:
                feature[t, n] = node["feature_idx"]
                threshold[t, n] = node["num_threshold"]
                left[t, n], right[t, n] = node["left"], node["right"]
        for n in range(len(nodes), width):  # padding: leaves of value 0 that nothing reaches
            left[t, n] = right[t, n] = n
    return {
        "kind": "trees",
        "features": list(names),
        "baseline": float(np.ravel(model._baseline_prediction)[0]),
        "depth": depth,
        "feature": feature.tolist(),
        "threshold": threshold.tolist(),
        "left": left.tolist(),
        "right": right.tolist(),
        "value": value.tolist(),
    }


def _columns(names: Sequence[str]) -> list[int]:
    from qa.answering.features import ALL_SENTENCE_FEATURES

    return [ALL_SENTENCE_FEATURES.index(n) for n in names]


def sentence_rows(ds: Dataset, instances: Indices, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Training rows of the sentence model: the sentences of these instances (on-topic answerable ones only,
    unless the recipe adds negatives)."""
    picked = [
        i
        for i in instances
        if recipe.sentence_negatives or (ds.instances[i]["topic"] == "on" and ds.instances[i]["answerable"])
    ]
    rows = np.concatenate([np.arange(ds.rows(i).start, ds.rows(i).stop) for i in picked])
    return ds.features[rows][:, _columns(recipe.sentence_features)], ds.labels[rows].astype(np.int64)


@dataclass
class Played:
    """What the pipeline would do on one instance with given sentence scores."""

    hit_at_1: bool
    lead: int | None  # row within the instance
    right: bool  # the lead holds an answer
    answer_row: np.ndarray | None


def play(ds: Dataset, i: int, logits: np.ndarray, rerank_weight: float) -> Played:
    """Re-rank the head, pick the lead among the first TOP_K passages, describe the answer (as QA.ask does)."""
    from qa.answering.features import answer_row, lead_of, passage_order

    rows, passages = ds.rows(i), ds.passages(i)
    owner = ds.owners[rows]
    order = passage_order(owner, ds.fused[passages], logits, rerank_weight) if len(ds.fused[passages]) else []
    hit = bool(order) and bool(ds.passage_labels[passages][order[0]])
    lead = lead_of(owner, order, logits, TOP_K) if order else None
    if lead is None:
        return Played(hit, None, False, None)
    row = answer_row(
        ds.features[rows],
        ds.articles[rows],
        ds.starts[rows],
        ds.ends[rows],
        ds.question_values[i],
        logits,
        lead,
    )
    return Played(hit, lead, bool(ds.labels[rows][lead]), row)


def play_all(ds: Dataset, logits: np.ndarray, rerank_weight: float) -> list[Played]:
    """`play` on every instance, given every sentence row's score."""
    return [play(ds, i, logits[ds.rows(i)], rerank_weight) for i in range(len(ds.instances))]


def answer_label(ds: Dataset, i: int, played: Played) -> int:
    """1 when the answer would be right: an on-topic answerable question whose lead holds an answer."""
    instance = ds.instances[i]
    return int(instance["topic"] == "on" and instance["answerable"] and played.right)


def folds_of(ds: Dataset) -> np.ndarray:
    return np.array([i["fold"] for i in ds.instances], dtype=np.int64)


def isotonic(logits: np.ndarray, labels: np.ndarray) -> dict[str, list[float]]:
    """Isotonic calibration of log-odds, as the step points np.interp reads."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(logits, labels)
    return {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def logits_of(model: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """The numpy scorer's log-odds for rows (exactly what serving computes)."""
    from qa.answering.scorer import model_from_dict

    return model_from_dict(model).logits(rows)


@dataclass
class CrossValidated:
    """Out-of-fold predictions of every instance."""

    sentence_logits: np.ndarray  # per sentence row
    played: list[Played]
    answer_logits: np.ndarray  # per instance (-inf: no lead)
    confidence: np.ndarray  # per instance, calibrated by a calibrator fit on the other folds
    threshold: np.ndarray  # per instance, the threshold chosen on the other folds
    labels: np.ndarray  # per instance, the answer would be right
    unbounded_threshold: np.ndarray  # per instance, chosen on the other folds with no bound on accuracy cost


def cross_validate(ds: Dataset, recipe: Recipe, log: Callable[[str], None]) -> CrossValidated:
    """k-fold by article: every prediction comes from models that never saw that article's questions."""
    folds = folds_of(ds)
    n_folds = int(folds.max()) + 1
    sentence_logits = np.zeros(len(ds.features))
    instance_rows = [np.arange(ds.rows(i).start, ds.rows(i).stop) for i in range(len(ds.instances))]
    for f in range(n_folds):
        train = np.flatnonzero(folds != f)
        x, y = sentence_rows(ds, train, recipe)
        model = fit_model(x, y, recipe.sentence_kind, recipe.sentence_features, recipe)
        held = np.concatenate([instance_rows[i] for i in np.flatnonzero(folds == f)])
        sentence_logits[held] = logits_of(model, ds.features[held][:, _columns(recipe.sentence_features)])
        log(f"sentence model, fold {f}: {len(y)} rows")
    if recipe.rerank_weight < 0:  # choose it: the weight whose re-ranking puts a right passage first most often
        answerable = [i for i, x in enumerate(ds.instances) if x["topic"] == "on" and x["answerable"]]
        hits = {}
        for weight in RERANK_WEIGHTS:
            hits[weight] = sum(play(ds, i, sentence_logits[ds.rows(i)], weight).hit_at_1 for i in answerable)
        recipe.chosen_rerank_weight[0] = max(RERANK_WEIGHTS, key=lambda w: (hits[w], -w))
        log(f"re-ranking weight {recipe.chosen_rerank_weight[0]} (hit@1 by weight: {hits})")
    played = play_all(ds, sentence_logits, recipe.weight)
    labels = np.array([answer_label(ds, i, p) for i, p in enumerate(played)], dtype=np.int64)
    has = np.array([p.answer_row is not None for p in played])
    rows = np.vstack([p.answer_row if p.answer_row is not None else np.zeros(len(_answer_names())) for p in played])
    rows = rows[:, [_answer_names().index(n) for n in recipe.answer_features]]
    answer_logits = np.full(len(played), -np.inf)
    for f in range(n_folds):
        train = np.flatnonzero((folds != f) & has)
        model = fit_model(rows[train], labels[train], recipe.answer_kind, recipe.answer_features, recipe)
        held = np.flatnonzero((folds == f) & has)
        answer_logits[held] = logits_of(model, rows[held])
        log(f"answer model, fold {f}: {len(train)} rows")
    confidence = np.zeros(len(played))
    threshold = np.zeros(len(played))
    unbounded = np.zeros(len(played))
    right = np.array([p.right for p in played], dtype=bool)
    for f in range(n_folds):
        other = np.flatnonzero((folds != f) & has)
        calibration = isotonic(answer_logits[other], labels[other])
        held = np.flatnonzero((folds == f) & has)
        confidence[held] = np.interp(answer_logits[held], calibration["x"], calibration["y"])
        other_confidence = np.zeros(len(played))
        other_confidence[other] = np.interp(answer_logits[other], calibration["x"], calibration["y"])
        training = np.flatnonzero(folds != f)
        threshold[folds == f] = choose_threshold(ds, training, other_confidence, right, recipe.max_accuracy_cost)
        unbounded[folds == f] = choose_threshold(ds, training, other_confidence, right, 1.0)
    return CrossValidated(sentence_logits, played, answer_logits, confidence, threshold, labels, unbounded)


def _answer_names() -> tuple[str, ...]:
    from qa.answering.features import ANSWER_FEATURES

    return ANSWER_FEATURES


MIN_ANSWERED = 0.88  # the threshold must answer at least this share of squad2's answerable questions


def _groups(ds: Dataset, instances: Indices) -> dict[str, np.ndarray]:
    """Instance indices by what they measure."""
    picked = np.asarray(instances, dtype=np.int64)

    def where(test: Callable[[dict[str, Any]], bool]) -> np.ndarray:
        return np.array([i for i in picked if test(ds.instances[i])], dtype=np.int64)

    return {
        "squad": where(lambda x: x["source"] == "squad" and x["topic"] == "on"),
        "squad_off": where(lambda x: x["source"] == "squad" and x["topic"] == "off"),
        "squad2_answerable": where(lambda x: x["source"] == "squad2" and x["topic"] == "on" and x["answerable"]),
        "squad2_unanswerable": where(lambda x: x["source"] == "squad2" and x["topic"] == "on" and not x["answerable"]),
        "off": where(lambda x: x["topic"] == "off"),
        "coqa": where(lambda x: x["source"] == "coqa" and x["topic"] == "on"),
    }


def _share(mask: np.ndarray, group: np.ndarray) -> float:
    return float(mask[group].mean()) if len(group) else float("nan")


def abstention_figures(ds: Dataset, instances: Indices, answered: np.ndarray) -> dict[str, float]:
    """Answered/abstained shares and balanced accuracies, given which instances would be answered."""
    g = _groups(ds, instances)
    a = _share(answered, g["squad2_answerable"])
    u = 1 - _share(answered, g["squad2_unanswerable"])
    s = _share(answered, g["squad"])
    o = 1 - _share(answered, g["squad_off"])
    return {
        "squad2_answered_when_answerable": a,
        "squad2_abstained_when_not": u,
        "squad2_balanced": (a + u) / 2,
        "squad_answered": s,
        "squad_offtopic_abstained": o,
        "offtopic_balanced": (s + o) / 2,
        "all_offtopic_abstained": 1 - _share(answered, g["off"]),
    }


def choose_threshold(
    ds: Dataset, instances: Indices, confidence: np.ndarray, right: np.ndarray, max_accuracy_cost: float
) -> float:
    """The confidence threshold that best balances on-topic (SQuAD 2.0) and off-topic abstention (the mean of the
    two balanced accuracies) among those that answer at least MIN_ANSWERED of squad2's answerable questions and
    cost at most `max_accuracy_cost` of squad-tune's answer accuracy (withheld counted as missed) against
    answering every question. Only `instances` (the training folds) are read."""
    squad = _groups(ds, instances)["squad"]
    everything = _share(right, squad)
    best, chosen = -1.0, 0.0
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        f = abstention_figures(ds, instances, confidence >= t)
        cost = everything - _share(right & (confidence >= t), squad)
        if f["squad2_answered_when_answerable"] < MIN_ANSWERED or cost > max_accuracy_cost + 1e-12:
            break
        score = (f["squad2_balanced"] + f["offtopic_balanced"]) / 2
        if score > best:
            best, chosen = score, float(t)
    return chosen


def reliability(confidence: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and the reliability table (equal-width bins of confidence)."""
    table = []
    ece = 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for b in range(bins):
        inside = (confidence >= edges[b]) & ((confidence < edges[b + 1]) | (b == bins - 1))
        n = int(inside.sum())
        if not n:
            continue
        mean, right = float(confidence[inside].mean()), float(labels[inside].mean())
        ece += n / len(confidence) * abs(mean - right)
        table.append({"from": float(edges[b]), "to": float(edges[b + 1]), "n": n, "confidence": mean, "right": right})
    return ece, table


def figures(
    ds: Dataset, played: Sequence[Played], answered: np.ndarray, confidence: np.ndarray | None, labels: np.ndarray
) -> dict[str, Any]:
    """Every figure of the README table, from what the pipeline would do on each instance."""
    everything = range(len(ds.instances))
    g = _groups(ds, everything)
    right = np.array([p.right for p in played]) & answered
    hit = np.array([p.hit_at_1 for p in played])
    out: dict[str, Any] = {
        "squad_hit_at_1": _share(hit, g["squad"]),
        "squad_answer_accuracy": _share(right, g["squad"]),
        "squad_precision": float(right[g["squad"]].sum() / max(1, answered[g["squad"]].sum())),
        "squad2_answer_accuracy": _share(right, g["squad2_answerable"]),
        "coqa_first_turn_support": _share(right, g["coqa"]),
        **abstention_figures(ds, everything, answered),
    }
    if confidence is not None:
        out["ece"], out["reliability"] = reliability(confidence, labels)
    return out


def hand_tuned(ds: Dataset) -> tuple[list[Played], np.ndarray]:
    """Today's pipeline replayed: hand-weighted sentence score, re-ranking by fused + 2 × best score, and
    abstention unless a passage's best sentence score plus its cosine reaches QA_MIN_SCORE (1.1)."""
    from qa.answering.features import ALL_SENTENCE_FEATURES

    hand, sim = ALL_SENTENCE_FEATURES.index("hand_score"), ALL_SENTENCE_FEATURES.index("sim_passage")
    played, answered = [], np.zeros(len(ds.instances), dtype=bool)
    for i in range(len(ds.instances)):
        rows, passages = ds.rows(i), ds.passages(i)
        owner, score = ds.owners[rows], ds.features[rows][:, hand]
        fused = ds.fused[passages]
        best = np.full(len(fused), -np.inf)
        np.maximum.at(best, owner, score)
        order = sorted(range(len(fused)), key=lambda c: float(fused[c] + 2.0 * best[c]), reverse=True)
        similarity = np.zeros(len(fused))
        similarity[owner] = ds.features[rows][:, sim]
        relevant = [c for c in order[:TOP_K] if best[c] + similarity[c] >= 1.1]
        hit = bool(order) and bool(ds.passage_labels[passages][order[0]])
        allowed = np.isin(owner, relevant)
        if not allowed.any():
            played.append(Played(hit, None, False, None))
            continue
        lead = int(np.argmax(np.where(allowed, score, -np.inf)))
        played.append(Played(hit, lead, bool(ds.labels[rows][lead]), None))
        answered[i] = True
    return played, answered


def digest(path: Path) -> str:
    """sha256 of a file, for the weights' record of what they were trained on."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(ds: Dataset, recipe: Recipe, log: Callable[[str], None], sources: dict[str, Any]) -> dict[str, Any]:
    """Cross-validate, then train the shipped models on everything; the weights file's JSON object."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401  (fail early without the extra)

    cv = cross_validate(ds, recipe, log)
    everything = np.arange(len(ds.instances))
    answered = cv.confidence >= cv.threshold
    report = figures(ds, cv.played, answered, cv.confidence, cv.labels)
    unbounded = figures(ds, cv.played, cv.confidence >= cv.unbounded_threshold, None, cv.labels)
    never_abstaining = figures(ds, cv.played, np.ones(len(ds.instances), dtype=bool), None, cv.labels)
    report["squad_lead_right"] = never_abstaining["squad_answer_accuracy"]
    report["squad2_lead_right"] = never_abstaining["squad2_answer_accuracy"]
    x, y = sentence_rows(ds, everything, recipe)
    sentence, sentence_reference = fit_with_reference(x, y, recipe.sentence_kind, recipe.sentence_features, recipe)
    has = np.array([p.answer_row is not None for p in cv.played])
    names = _answer_names()
    rows = np.vstack([p.answer_row for p in cv.played if p.answer_row is not None])
    rows = rows[:, [names.index(n) for n in recipe.answer_features]]
    answer, answer_reference = fit_with_reference(
        rows, cv.labels[has], recipe.answer_kind, recipe.answer_features, recipe
    )
    calibration = isotonic(cv.answer_logits[has], cv.labels[has])
    pooled = np.zeros(len(ds.instances))
    pooled[has] = np.interp(cv.answer_logits[has], calibration["x"], calibration["y"])
    right = np.array([p.right for p in cv.played], dtype=bool)
    threshold = choose_threshold(ds, everything, pooled, right, recipe.max_accuracy_cost)
    picks = np.random.default_rng(recipe.seed)
    sentence_check = x[np.sort(picks.choice(len(x), size=min(32, len(x)), replace=False))]
    answer_check = rows[np.sort(picks.choice(len(rows), size=min(32, len(rows)), replace=False))]
    log(f"threshold {threshold:.2f} (cross-validated: {json.dumps(_rounded(report))})")
    return {
        "format": 1,
        "meta": {
            "about": "qa answer scorer; trained by bench/train_scorer.py fit (see the README, Answer quality)",
            "seed": recipe.seed,
            "folds": int(folds_of(ds).max()) + 1,
            "recipe": {k: v for k, v in recipe.__dict__.items() if not isinstance(v, (tuple, list))},
            "sources": sources,
            "cross_validated": _rounded({k: v for k, v in report.items() if k != "reliability"}),
            "cross_validated_unbounded_cost": _rounded(unbounded),
            "reliability": _rounded(report.get("reliability", [])),
        },
        "threshold": threshold,
        "rerank_weight": recipe.weight,
        "sentence": sentence,
        "answer": answer,
        "calibration": calibration,
        "check": {  # scikit-learn's own outputs on a few training rows: the numpy scorer must reproduce them
            "sentence_rows": sentence_check.tolist(),
            "sentence_logits": sentence_reference(sentence_check).tolist(),
            "answer_rows": answer_check.tolist(),
            "answer_logits": answer_reference(answer_check).tolist(),
        },
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if value != value else round(value, 4)  # NaN (a group with no questions): null
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def write_weights(weights: dict[str, Any], path: Path) -> None:
    """The weights as JSON: keys sorted, floats written exactly (repr), no time stamps, so runs compare by bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(weights, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")


def print_table(name: str, report: dict[str, Any]) -> None:
    """One row of the README's comparison table, then the reliability table."""
    columns = (
        "squad_hit_at_1",
        "squad_lead_right",
        "squad_answer_accuracy",
        "squad_precision",
        "squad2_answered_when_answerable",
        "squad2_abstained_when_not",
        "squad2_balanced",
        "squad2_lead_right",
        "squad_offtopic_abstained",
        "offtopic_balanced",
        "coqa_first_turn_support",
        "ece",
    )
    print("| scorer | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    print(f"| {name} | " + " | ".join(_cell(report.get(c)) for c in columns) + " |")
    if report.get("reliability"):
        print("\n| confidence | questions | mean confidence | right |\n|---|---|---|---|")
        for row in report["reliability"]:
            print(f"| {row['from']:.1f}–{row['to']:.1f} | {row['n']} | {row['confidence']:.3f} | {row['right']:.3f} |")


def answerable_experiment(cache: Path, seed: int) -> dict[str, dict[str, float]]:
    """Could a model of answerability alone do better than the answer model's probability on squad2?

    Trained on squad2's on-topic questions only (answerable or not), by the cached folds, on the max and the mean
    of every sentence feature over a question's candidates plus the question's own values; out-of-fold figures:
    ROC AUC, and at the threshold that answers 0.85 of the answerable questions (the issue's floor), the share
    of unanswerable ones withheld and the balanced accuracy. A linear model (it would export to numpy) and trees.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    data = load(cache, ["squad2"])
    on = [i for i, x in enumerate(data.instances) if x["topic"] == "on"]
    rows = []
    for i in on:
        f = data.features[data.rows(i)]
        rows.append(np.concatenate([f.max(axis=0), f.mean(axis=0), data.question_values[i]]))
    x = np.array(rows)
    y = np.array([data.instances[i]["answerable"] for i in on])
    folds = np.array([data.instances[i]["fold"] for i in on])
    makers: dict[str, Callable[[], Any]] = {
        "linear": lambda: LogisticRegression(C=0.1, max_iter=3000),
        "trees": lambda: HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=seed
        ),
    }
    out = {}
    for name, make in makers.items():
        p = np.zeros(len(y))
        for k in sorted(set(folds)):
            train, test = folds != k, folds == k
            mean, scale = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
            model = make().fit((x[train] - mean) / scale, y[train])
            p[test] = model.predict_proba((x[test] - mean) / scale)[:, 1]
        out[name] = answerability_figures(y, p)
    return out


def answerability_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """How well scores `p` tell answerable questions (`y`) from the others: ROC AUC and, at the threshold that
    answers 0.85 of the answerable ones (#13's floor), the share of the others withheld and the balanced accuracy."""
    from sklearn.metrics import roc_auc_score

    from qa.answering.reliability import balanced_accuracy

    threshold = np.quantile(p[y], 0.15)
    answered, withheld = float((p[y] >= threshold).mean()), float((p[~y] < threshold).mean())
    return {
        "auc": round(float(roc_auc_score(y, p)), 3),
        "answered_when_answerable": round(answered, 3),
        "abstained_when_not": round(withheld, 3),
        "balanced": round(balanced_accuracy(answered, withheld), 3),
    }


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="ask every question and cache the candidates' features")
    c.add_argument("--sources", default="squad,squad2,coqa", help="comma-separated names from SOURCES")
    c.add_argument("--limit", type=int, help="only the first N questions of each source (a quick run)")
    for p in (c,):
        p.add_argument("--data", type=Path, default=DATA, help="folder holding the sources' folders")
        p.add_argument("--cache", type=Path, default=CACHE, help="where features are cached")
        p.add_argument("--folds", type=int, default=FOLDS)
        p.add_argument("--seed", type=int, default=SEED)
    a = sub.add_parser("answerable", help="an experiment: a model of squad2 answerability alone, cross-validated")
    a.add_argument("--cache", type=Path, default=CACHE, help="where `collect` cached the features")
    a.add_argument("--seed", type=int, default=SEED)
    for name, text in (
        ("fit", "cross-validate, train on everything and write the weights"),
        ("cv", "the cross-validated figures only, beside today's hand-tuned scorer"),
    ):
        f = sub.add_parser(name, help=text)
        f.add_argument("--sources", default="squad,squad2,coqa", help="cached sources to train on")
        f.add_argument("--cache", type=Path, default=CACHE, help="where `collect` cached the features")
        f.add_argument("--data", type=Path, default=DATA, help="the sources' folders (for their digests)")
        f.add_argument("--sentence-kind", choices=("trees", "linear"), default="trees")
        f.add_argument("--answer-kind", choices=("trees", "linear"), default="trees")
        f.add_argument("--rerank-weight", type=float, default=Recipe.rerank_weight)
        f.add_argument("--trees", type=int, default=Recipe.trees)
        f.add_argument("--sentence-negatives", action="store_true", help="train the sentence model on negatives too")
        f.add_argument("--seed", type=int, default=SEED)
        f.add_argument(
            "--max-accuracy-cost",
            type=float,
            default=Recipe.max_accuracy_cost,
            help="most squad-tune answer accuracy the threshold may cost against answering everything (1: no bound)",
        )
        f.add_argument("--json", action="store_true", help="print the figures as JSON")
        if name == "fit":
            f.add_argument("--out", type=Path, default=WEIGHTS, help="the weights file to write")
    args = parser.parse_args()
    if args.command == "collect":
        for name in args.sources.split(","):
            path = collect(SOURCES[name], args.data, args.cache, args.folds, args.seed, args.limit)
            print(f"{name}: {path}.npz")
        return
    if args.command == "answerable":
        print(json.dumps(answerable_experiment(args.cache, args.seed), indent=2))
        return
    names = args.sources.split(",")
    recipe = replace(
        default_recipe(),
        sentence_kind=args.sentence_kind,
        answer_kind=args.answer_kind,
        rerank_weight=args.rerank_weight,
        trees=args.trees,
        sentence_negatives=args.sentence_negatives,
        seed=args.seed,
        max_accuracy_cost=args.max_accuracy_cost,
    )
    ds = load(args.cache, names)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.command == "cv":
        cv = cross_validate(ds, recipe, log)
        report = figures(ds, cv.played, cv.confidence >= cv.threshold, cv.confidence, cv.labels)
        unbounded = figures(ds, cv.played, cv.confidence >= cv.unbounded_threshold, None, cv.labels)
        played, answered = hand_tuned(ds)
        before = figures(ds, played, answered, None, cv.labels)
        if args.json:
            everything = {"learned": report, "learned_unbounded_cost": unbounded, "hand_tuned": before}
            print(json.dumps(_rounded(everything), indent=2))
        else:
            print_table("hand-tuned (today)", before)
            print()
            print_table(f"learned (accuracy cost at most {recipe.max_accuracy_cost})", report)
            print()
            print_table("learned (accuracy cost unbounded)", unbounded)
        return
    sources = {}
    for name in names:
        folder = args.data / SOURCES[name].folder
        files = sorted(p for p in folder.glob("*.jsonl"))
        sources[name] = {p.name: digest(p) for p in files}
    weights = train(ds, recipe, log, sources)
    write_weights(weights, args.out)
    played, answered = hand_tuned(ds)
    print_table("hand-tuned (today)", figures(ds, played, answered, None, np.zeros(len(ds.instances))))
    print()
    learned = {**weights["meta"]["cross_validated"], "reliability": weights["meta"]["reliability"]}
    print_table(f"learned (cross-validated; accuracy cost at most {recipe.max_accuracy_cost})", learned)
    print()
    print_table("learned (cross-validated; accuracy cost unbounded)", weights["meta"]["cross_validated_unbounded_cost"])
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
