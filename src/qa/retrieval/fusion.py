"""Two rankings of passages into one: normalised score fusion (the default) or reciprocal-rank fusion."""

from __future__ import annotations

RRF_K = 60

Ranking = list[tuple[int, float]]
"""(passage id, score; higher is better), best first."""


def rrf(dense: Ranking, lexical: Ranking) -> dict[int, float]:
    """Reciprocal-rank fusion (Cormack et al. 2009): each ranking adds 1 / (k + rank)."""
    fused: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, (passage_id, _) in enumerate(ranking):
            fused[passage_id] = fused.get(passage_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def score_fusion(dense: Ranking, lexical: Ranking, weight: float = 0.5) -> dict[int, float]:
    """Normalised score fusion: each leg's scores min-max scaled to 0..1 over its list, `weight` for the dense leg."""
    fused: dict[int, float] = {}
    for ranking, w in ((dense, weight), (lexical, 1.0 - weight)):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        low, high = min(scores), max(scores)
        for passage_id, score in ranking:
            scaled = (score - low) / (high - low) if high > low else 1.0
            fused[passage_id] = fused.get(passage_id, 0.0) + w * scaled
    return fused
