"""Score fusion and reciprocal-rank fusion on hand-made rankings (no model, no index)."""

from __future__ import annotations

import pytest

from qa.retrieval.fusion import RRF_K, rrf, score_fusion


def test_rrf_adds_one_over_k_plus_rank_from_each_ranking() -> None:
    fused = rrf([(1, 0.9), (2, 0.5)], [(2, 7.0), (3, 1.0)])
    assert fused[2] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[1] == pytest.approx(1 / (RRF_K + 1))
    assert fused[3] == pytest.approx(1 / (RRF_K + 2))
    assert max(fused, key=fused.__getitem__) == 2  # found by both legs


def test_rrf_ignores_scores() -> None:
    assert rrf([(1, 100.0), (2, -5.0)], []) == rrf([(1, 0.1), (2, 0.0)], [])


def test_score_fusion_scales_each_leg_to_zero_one_and_weights_it() -> None:
    dense = [(1, 0.8), (2, 0.6), (3, 0.4)]
    lexical = [(3, 12.0), (4, 2.0)]
    fused = score_fusion(dense, lexical, weight=0.4)
    assert fused[1] == pytest.approx(0.4)  # best dense, absent from the lexical leg
    assert fused[2] == pytest.approx(0.4 * 0.5)
    assert fused[3] == pytest.approx(0.0 + 0.6)  # worst dense, best lexical
    assert fused[4] == pytest.approx(0.0)


def test_score_fusion_with_one_result_per_leg_gives_it_full_marks() -> None:
    assert score_fusion([(7, 0.3)], [(7, 4.0)], weight=0.5) == {7: pytest.approx(1.0)}


def test_score_fusion_of_nothing_is_nothing() -> None:
    assert score_fusion([], [], weight=0.5) == {}
