"""Hybrid retrieval: a back end's dense and lexical legs, fused (normalised scores or reciprocal ranks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.embedding import Vectors
from qa.store import PassageRow

if TYPE_CHECKING:
    from qa.backend import Backend

RRF_K = 60
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    yourselves
    """.split()
)


@dataclass(frozen=True)
class Candidate:
    """A retrieved passage with its cosine similarity to the query and its fused rank score."""

    passage: PassageRow
    similarity: float
    fused: float


def query_terms(text: str) -> list[str]:
    """The content words of a query, lower-cased, in order, without repeats."""
    words = re.findall(r"\w+", text.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())))


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression: every term quoted, so no user text is read as syntax.

    A multi-word name also asks for its acronym, since articles often name it once and then abbreviate it:
    "Shanghai Cooperation Organization" matches passages that only say "SCO".
    """
    terms = query_terms(text)
    terms += [a for a in acronyms_of(text) if a not in terms]
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


_NAME_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:(?:of|and|for|the|de)\s+)?[A-Z][a-z]+)+")


def acronyms_of(text: str) -> list[str]:
    """Lower-cased initials of capitalised names of three words or more ("World Trade Organization": wto)."""
    found = []
    for match in _NAME_RUN.finditer(text):
        words = [w for w in match.group(0).split() if w[0].isupper() and w.lower() not in _NOT_NAME]
        if len(words) >= 3:  # two-word names are mostly people, whose initials mean nothing
            found.append("".join(w[0] for w in words).lower())
    return found


_NOT_NAME = STOPWORDS | {"which", "what", "who", "when", "where", "why", "how", "did", "does", "is", "was"}


def rrf(dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> dict[int, float]:
    """Reciprocal-rank fusion (Cormack et al. 2009): each ranking adds 1 / (k + rank)."""
    fused: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, (passage_id, _) in enumerate(ranking):
            fused[passage_id] = fused.get(passage_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


def score_fusion(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], weight: float = 0.5, floor: bool = False
) -> dict[int, float]:
    """Normalised score fusion: each leg's scores scaled to 0..1, weighted (`weight` for the dense leg).

    Scaling is min-max over the retrieved list, or with `floor` from the leg's theoretical minimum (-1 for
    cosine, 0 for BM25) to the observed maximum (TM2C2, Bruch et al. 2023).
    """
    fused: dict[int, float] = {}
    for ranking, w, theoretical_min in ((dense, weight, -1.0), (lexical, 1.0 - weight, 0.0)):
        if not ranking:
            continue
        scores = [s for _, s in ranking]
        low, high = (theoretical_min if floor else min(scores)), max(scores)
        for passage_id, score in ranking:
            scaled = (score - low) / (high - low) if high > low else 1.0
            fused[passage_id] = fused.get(passage_id, 0.0) + w * scaled
    return fused


def retrieve(
    backend: Backend,
    query: str,
    query_vector: Vectors,
    k: int,
    depth: int = 50,
    fusion: str = "score",
    dense_weight: float = 0.5,
) -> list[Candidate]:
    """The k best passages by fusing the back end's dense and lexical rankings (`rrf` or `score`)."""
    depth = max(depth, k)
    dense = backend.dense(query_vector, depth)
    lexical = backend.lexical(query, depth)
    fused = rrf(dense, lexical) if fusion == "rrf" else score_fusion(dense, lexical, dense_weight, fusion == "tm2c2")
    order = sorted(fused, key=lambda i: fused[i], reverse=True)[: k * 2]
    rows = backend.passages(order)  # drops passages deleted since the search began
    similarity = dict(dense)
    lexical_only = [i for i in order if i not in similarity and i in rows]
    similarity.update(backend.similarity(query_vector, lexical_only))
    return [Candidate(rows[i], similarity.get(i, 0.0), fused[i]) for i in order if i in rows][:k]


def stem(word: str) -> str:
    """A light suffix strip, enough to match "joined" with "join" and "reserves" with "reserve"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
