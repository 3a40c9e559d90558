"""How far confidence can be trusted: the reliability table and expected calibration error (ECE).

Confidences are grouped into equal-width bins; in each, the mean confidence is compared with the share of
answers that were right. ECE is the mean gap weighted by how many answers fall in each bin (Guo et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReliabilityBin:
    """Answers whose confidence lies in [low, high): how many, how confident on average, how many right."""

    low: float
    high: float
    answers: int
    confidence: float
    right: float


def reliability_table(confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """The non-empty bins of equal width over 0..1 (the last includes 1.0)."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(right, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    for b in range(bins):
        inside = (conf >= edges[b]) & ((conf < edges[b + 1]) | (b == bins - 1))
        if inside.any():
            table.append(
                ReliabilityBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(inside.sum()),
                    float(conf[inside].mean()),
                    float(hit[inside].mean()),
                )
            )
    return table


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float:
    """Mean |confidence - share right| over the bins, weighted by their answers."""
    total = sum(b.answers for b in table)
    return sum(b.answers * abs(b.confidence - b.right) for b in table) / total if total else 0.0


def balanced_accuracy(answered_when_answerable: float, abstained_when_not: float) -> float:
    """The mean of the two rates: answering what can be answered, and abstaining on what cannot."""
    return (answered_when_answerable + abstained_when_not) / 2
