"""The learned answer scorer: which sentence leads, and how likely the answer is right (numpy only).

Two models, trained by bench/train_scorer.py and shipped as scorer_weights.json beside this file:

- a sentence model scores every candidate sentence (the log-odds that it holds an answer); the best leads,
  and passages are re-ranked by their fused retrieval score plus their best sentence's probability;
- an answer model reads the leading sentence's score, its margin over the runner-up and a few facts about the
  question and the candidates, and gives a calibrated probability that the answer is right (`confidence`).

Either model is a logistic regression or gradient-boosted trees, stored as plain arrays; calibration is
isotonic (a monotone step function) over the answer model's log-odds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.answering.features import ANSWER_FEATURES, SentenceTable, answer_features, matrix, passage_order
from qa.errors import QAError

WEIGHTS = Path(__file__).with_name("scorer_weights.json")
FORMAT = 1


class Model:
    """A model mapping feature rows to log-odds."""

    features: tuple[str, ...]

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds for each row of `rows` (columns in `features` order)."""
        raise NotImplementedError


@dataclass(frozen=True)
class LinearModel(Model):
    """Logistic regression on standardised features."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds: the standardised rows times the coefficients, plus the intercept."""
        result: np.ndarray = ((rows - self.mean) / self.scale) @ self.coef + self.intercept
        return result


@dataclass(frozen=True)
class TreeModel(Model):
    """Gradient-boosted regression trees, every tree padded to the same number of nodes.

    A row goes left at a node when its feature is at most the threshold; leaves point to themselves.
    """

    features: tuple[str, ...]
    baseline: float
    feature: np.ndarray  # (trees, nodes) int
    threshold: np.ndarray  # (trees, nodes) float
    left: np.ndarray  # (trees, nodes) int
    right: np.ndarray  # (trees, nodes) int
    value: np.ndarray  # (trees, nodes) float, the leaves' outputs
    depth: int

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The trees laid end to end: node ids become offsets into one array (cheaper to index)."""
        n_trees, width = self.feature.shape
        offsets = (np.arange(n_trees) * width)[:, None]
        return (
            self.feature.ravel(),
            self.threshold.ravel(),
            (self.left + offsets).ravel(),
            (self.right + offsets).ravel(),
            self.value.ravel(),
            offsets.ravel(),
        )

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds: the baseline plus every tree's leaf value, all trees walked at once."""
        feature, threshold, left, right, value, roots = self._flat
        node = np.broadcast_to(roots, (rows.shape[0], len(roots)))
        for _ in range(self.depth):
            goes_left = np.take_along_axis(rows, feature[node], axis=1) <= threshold[node]
            node = np.where(goes_left, left[node], right[node])
        result: np.ndarray = self.baseline + value[node].sum(axis=1)
        return result


@dataclass(frozen=True)
class Calibration:
    """Isotonic calibration: log-odds to probability by a monotone piecewise-linear map."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities for `logits`."""
        return np.asarray(np.interp(logits, self.x, self.y), dtype=np.float64)


@dataclass(frozen=True)
class AnswerScorer:
    """Sentence ranking, passage re-ranking and answer confidence, from one weights file."""

    sentence: Model
    answer: Model
    calibration: Calibration
    threshold: float  # the confidence below which to abstain, chosen on cross-validated predictions
    rerank_weight: float  # how much a passage's best sentence probability counts against its fused score
    meta: dict[str, Any]

    def sentence_logits(self, table: SentenceTable) -> np.ndarray:
        """The log-odds that each candidate sentence holds an answer."""
        if not len(table.spans):
            return np.zeros(0, dtype=np.float64)
        return self.sentence.logits(matrix(table, self.sentence.features))

    def passage_order(self, table: SentenceTable, logits: np.ndarray) -> list[int]:
        """Candidates re-ordered by fused score plus rerank_weight × their best sentence's probability."""
        fused = np.array([c.fused for c in table.candidates], dtype=np.float64)
        return passage_order(table.owner, fused, logits, self.rerank_weight)

    def confidence(self, table: SentenceTable, logits: np.ndarray, lead: int) -> float:
        """Calibrated probability that the answer led by sentence `lead` is right."""
        row = answer_features(table, logits, lead)
        picked = row[[ANSWER_FEATURES.index(name) for name in self.answer.features]]
        return float(self.calibration(self.answer.logits(picked[None, :]))[0])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))
    return result


def sigmoid(x: float) -> float:
    """The logistic function."""
    return float(_sigmoid(np.array([x]))[0])


def model_from_dict(data: dict[str, Any]) -> Model:
    """A model from its JSON form (see bench/train_scorer.py)."""
    features = tuple(data["features"])
    if data["kind"] == "linear":
        return LinearModel(
            features,
            np.array(data["mean"], dtype=np.float64),
            np.array(data["scale"], dtype=np.float64),
            np.array(data["coef"], dtype=np.float64),
            float(data["intercept"]),
        )
    if data["kind"] == "trees":
        return TreeModel(
            features,
            float(data["baseline"]),
            np.array(data["feature"], dtype=np.int64),
            np.array(data["threshold"], dtype=np.float64),
            np.array(data["left"], dtype=np.int64),
            np.array(data["right"], dtype=np.int64),
            np.array(data["value"], dtype=np.float64),
            int(data["depth"]),
        )
    raise QAError(f"unknown scorer model kind {data['kind']!r}")


def scorer_from_dict(data: dict[str, Any]) -> AnswerScorer:
    """An AnswerScorer from the weights file's JSON object."""
    if data.get("format") != FORMAT:
        raise QAError(f"scorer weights format {data.get('format')!r}; this qa reads format {FORMAT}")
    calibration = data["calibration"]
    return AnswerScorer(
        sentence=model_from_dict(data["sentence"]),
        answer=model_from_dict(data["answer"]),
        calibration=Calibration(np.array(calibration["x"], dtype=np.float64), np.array(calibration["y"])),
        threshold=float(data["threshold"]),
        rerank_weight=float(data["rerank_weight"]),
        meta=dict(data.get("meta", {})),
    )


@lru_cache(maxsize=8)
def load_scorer(path: Path | None = None) -> AnswerScorer:
    """The scorer in `path` (default: the weights shipped with qa), read once per process."""
    source = path or WEIGHTS
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        return scorer_from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise QAError(f"cannot read scorer weights {source}: {e}") from e


def check_outputs(scorer: AnswerScorer, check: dict[str, Sequence[Sequence[float]]]) -> tuple[float, float]:
    """Largest differences between this scorer's log-odds and those the trainer recorded (sentence, answer)."""
    sentence = scorer.sentence.logits(np.array(check["sentence_rows"], dtype=np.float64))
    answer = scorer.answer.logits(np.array(check["answer_rows"], dtype=np.float64))
    return (
        float(np.abs(sentence - np.array(check["sentence_logits"])).max()),
        float(np.abs(answer - np.array(check["answer_logits"])).max()),
    )
