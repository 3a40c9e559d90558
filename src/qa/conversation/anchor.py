"""Where the previous answer sits in an article: a follow-up's answer usually lies at or just after it."""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.backends.base import PassageRow
from qa.conversation.followup import answer_text, own_terms
from qa.embedding import Vectors
from qa.records import Turn
from qa.text.sentences import sentence_spans
from qa.text.words import stem

EXACT = 2.0  # a sentence that holds the answer's text outright beats any partial overlap
QUESTION = 0.5  # weight of the question's words
MEANING = 2.0  # weight of the question's cosine to the sentence (when the article's sentence vectors are known)
NEAR = 0.1  # bonus for being at or up to two sentences after the turn before's place
NEAR_NO_TEXT = 0.3  # ... when the answer has no text (yes/no)
MIN_SCORE = 0.5  # below this, the turn is not placed at all (half the answer's words)
MIN_SCORE_NO_TEXT = 0.25  # ... or, for a yes/no answer, half the question's (weighted) words


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[\w'’]+", text.lower()))


def _stems(text: str) -> set[str]:
    return {stem(t) for t in own_terms(text)}


@dataclass(frozen=True)
class ArticleSentences:
    """An article's sentences: spans, normalised words and (when stored) vectors, for placing answers in it."""

    spans: tuple[tuple[int, int], ...]
    normal: tuple[str, ...]
    stems: tuple[frozenset[str], ...]
    vectors: Vectors | None = None

    @classmethod
    def of(cls, text: str, passages: Sequence[PassageRow] = ()) -> ArticleSentences:
        """The article's sentences; the passages' stored sentence vectors are pooled onto them when given."""
        spans, normal, stems = _sentences(text)
        return cls(spans, normal, stems, _pooled(spans, passages))

    @property
    def starts(self) -> tuple[int, ...]:
        """Each sentence's first character offset."""
        return tuple(s for s, _ in self.spans)


@functools.lru_cache(maxsize=32)  # keyed by whole article texts (up to the article size cap): keep few
def _sentences(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...], tuple[frozenset[str], ...]]:
    """An article's sentence spans, normalised words and stems (remembered: a conversation asks about one article)."""
    spans = tuple(sentence_spans(text))
    normal = tuple(_normal(text[s:e]) for s, e in spans)
    return spans, normal, tuple(frozenset(stem(w) for w in n.split()) for n in normal)


def _pooled(spans: Sequence[tuple[int, int]], passages: Sequence[PassageRow]) -> Vectors | None:
    """One vector per article sentence, from the passages' stored ones (averaged where passages overlap)."""
    stored = [p for p in passages if p.sentences is not None]
    if not stored or not spans:
        return None
    starts = [s for s, _ in spans]
    dimension = stored[0].sentences.shape[1]  # type: ignore[union-attr]
    total = np.zeros((len(spans), dimension), dtype=np.float32)
    count = np.zeros(len(spans), dtype=np.float32)
    for passage in stored:
        own = sentence_spans(passage.text)
        vectors = passage.sentences
        if vectors is None or len(own) != len(vectors):
            continue
        for (start, _), vector in zip(own, vectors, strict=True):
            i = bisect.bisect_right(starts, passage.start + start) - 1
            if i >= 0:
                total[i] += vector
                count[i] += 1
    if not count.any():
        return None
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    pooled: Vectors = np.divide(total, norms, out=np.zeros_like(total), where=norms > 0)
    return pooled


def locate_turn(
    turn: Turn, article: ArticleSentences, near: int | None, question_vector: Vectors | None = None
) -> int | None:
    """The index of the sentence that best holds a turn's answer (or, for yes/no, its question), or None.

    A sentence containing the answer's words in order scores highest; otherwise the share of the answer's
    content words it holds counts. The question (its words, weighted by how rare they are in the article, and
    its meaning) breaks ties between repeated mentions and places answers with no text (yes/no), as does being
    at or just after `near` (the turn before's place: conversations move forward through a story).
    """
    answer = answer_text(turn)
    wanted = f" {_normal(answer)} " if answer else ""
    answer_stems = _stems(answer)
    question_stems = _stems(turn.question)
    n = len(article.spans)
    weight = {t: math.log(1 + n / (1 + sum(t in ss for ss in article.stems))) for t in question_stems}
    whole = sum(weight.values())
    meaning = None
    if question_vector is not None and article.vectors is not None:
        meaning = article.vectors @ question_vector.reshape(-1)
    best, best_score = None, MIN_SCORE if wanted or answer_stems else MIN_SCORE_NO_TEXT
    for i in range(n):
        stems = article.stems[i]
        score = 0.0
        if wanted and wanted in f" {article.normal[i]} ":
            score += EXACT
        elif answer_stems:
            score += len(answer_stems & stems) / len(answer_stems)
        if whole:
            score += QUESTION * sum(w for t, w in weight.items() if t in stems) / whole
        if meaning is not None:
            score += MEANING * float(meaning[i])
        if near is not None and 0 <= i - near <= 2:
            score += NEAR if wanted else NEAR_NO_TEXT
        if score > best_score:
            best, best_score = i, score
    return best


def locate(
    history: Sequence[Turn], article: ArticleSentences, turns: int = 3, question_vectors: Vectors | None = None
) -> int | None:
    """The sentence index of the last turn's answer, placing the few turns before it first to follow the thread.

    `question_vectors` holds the vectors of the last `turns` turns' questions, in order, when known.
    """
    recent = history[-turns:] if turns else history
    place: int | None = None
    for k, turn in enumerate(recent):
        vector = question_vectors[k] if question_vectors is not None else None
        found = locate_turn(turn, article, place, vector)
        place = found if found is not None else place
    return place
