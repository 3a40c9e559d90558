"""Hybrid retrieval: the back end's dense (vector) and lexical (BM25) legs, fused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qa.backends.base import Backend, PassageRow
from qa.embedding import Vectors
from qa.records import Filters
from qa.retrieval.fusion import rrf, score_fusion


@dataclass(frozen=True)
class Candidate:
    """A retrieved passage with its cosine similarity to the query and its fused rank score."""

    passage: PassageRow
    similarity: float
    fused: float


def retrieve(
    backend: Backend,
    query: str,
    query_vector: Vectors,
    k: int,
    depth: int = 50,
    fusion: str = "score",
    dense_weight: float = 0.5,
    boost: Mapping[int, float] | None = None,
    filters: Filters | None = None,
) -> list[Candidate]:
    """The k best passages by fusing the back end's dense and lexical rankings (`rrf` or `score`).

    `boost` adds to some passages' fused scores, retrieved or not (the articles of a conversation, qa.conversation).
    Filters apply inside both legs, so a narrow filter still fills k when k passages match.
    """
    depth = max(depth, k)
    dense = backend.dense(query_vector, depth, filters)
    lexical = backend.lexical(query, depth, filters)
    fused = rrf(dense, lexical) if fusion == "rrf" else score_fusion(dense, lexical, dense_weight)
    limited = filters is not None and filters.active()
    for passage_id, extra in (boost or {}).items():
        if passage_id in fused or not limited:  # under a filter, only passages the filtered legs found
            fused[passage_id] = fused.get(passage_id, 0.0) + extra
    order = sorted(fused, key=lambda i: fused[i], reverse=True)[: k * 2]
    rows = backend.passages(order)  # drops passages deleted since the search began
    similarity = dict(dense)
    lexical_only = [i for i in order if i not in similarity and i in rows]
    similarity.update(backend.similarity(query_vector, lexical_only))
    return [Candidate(rows[i], similarity.get(i, 0.0), fused[i]) for i in order if i in rows][:k]
