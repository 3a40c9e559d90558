"""What a candidate sentence is, read from its passage: its span, its text in context, its stored vector, and the
word matching the answer scorer's features use (qa.answering.features); the hand-tuned weights live on as one
of those features ("hand_score")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.embedding import Embedder, Vectors
from qa.retrieval.hybrid import Candidate
from qa.text.sentences import sentence_spans
from qa.text.words import query_terms, stem

# The hand-tuned support of a sentence: its cosine similarity to the question, plus these shares of the others.
OVERLAP_WEIGHT = 0.7  # the question's words it shares, weighted by rarity
EXPECTED_TYPE_WEIGHT = 0.2  # it holds the kind of thing asked for (a date for "when")
PHRASE_WEIGHT = 0.2  # it repeats the question's word pairs
PASSAGE_WEIGHT = 0.2  # its passage's own similarity

# What kind of thing a question asks for, and how to see it in a sentence.
_YEAR_OR_DATE = re.compile(
    r"\b(?:1[5-9]\d\d|20\d\d|January|February|March|April|May|June|July|August|September|October|November"
    r"|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|century|decade)\b"
)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion)\b")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_EXPECTS = (
    (re.compile(r"^\s*(?:when|what (?:year|date|day|month|time|century))\b", re.I), _YEAR_OR_DATE),
    (
        re.compile(
            r"\bhow (?:many|much|large|big|long|old|far|high|tall)\b|\bwhat (?:percentage|number|amount)",
            re.I,
        ),
        _NUMBER,
    ),
    (
        re.compile(r"^\s*(?:who|whom|whose|which (?:country|countries|city|company|person|people))\b", re.I),
        _NAME,
    ),
    (re.compile(r"^\s*where\b", re.I), _NAME),
)


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a candidate passage, as article offsets, with its score (the probability that it answers)."""

    candidate: int
    article_id: str
    start: int
    end: int
    score: float


def _sentence_vectors(
    candidates: Sequence[Candidate],
    spans: Sequence[Sequence[tuple[int, int]]],
    texts: Sequence[str],
    embedder: Embedder,
) -> Vectors:
    """The sentences' vectors: stored with their passage at ingest, else encoded now (and cached)."""
    parts: list[Vectors] = []
    missing: list[tuple[int, int]] = []  # (part, first text) of sentences to encode now
    row = 0
    for candidate, sentence_spans_ in zip(candidates, spans, strict=True):
        stored = candidate.passage.sentences
        if stored is not None and len(stored) == len(sentence_spans_):
            parts.append(stored)
        else:
            missing.append((len(parts), row))
            parts.append(np.zeros((len(sentence_spans_), embedder.dimension), dtype=np.float32))
        row += len(sentence_spans_)
    if missing:
        wanted = [t for part, first in missing for t in texts[first : first + len(parts[part])]]
        encoded = embedder.encode_cached(wanted)
        at = 0
        for part, _ in missing:
            parts[part] = encoded[at : at + len(parts[part])]
            at += len(parts[part])
    return np.vstack(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)


def _new_match(pattern: re.Pattern[str], text: str, asked: str) -> bool:
    """The sentence holds the kind of thing asked for, and not merely what the question already says."""
    return any(m.group(0).lower() not in asked for m in pattern.finditer(text))


_ACRONYM = re.compile(
    r"\b((?:[A-Z][\w’'-]*\s+(?:(?:of|and|for|the|on|de)\s+)*){1,6}[A-Z][\w’'-]*)\s*\(([A-Z][A-Z0-9&]{1,9})\)"
)


def _acronyms(texts: Sequence[str]) -> list[tuple[str, frozenset[str]]]:
    """Acronyms the passages define, as "Shanghai Cooperation Organization (SCO)", with their name's words."""
    found = []
    for text in texts:
        for match in _ACRONYM.finditer(text):
            words = frozenset(stem(t) for t in query_terms(match.group(1)))
            found.append((match.group(2).lower(), words))
    return found


def _with_acronyms(words: set[str], acronyms: Sequence[tuple[str, frozenset[str]]]) -> set[str]:
    """A sentence's words, where an acronym also stands for its name's words and the name for the acronym."""
    for acronym, name in acronyms:
        if acronym in words:
            words |= name
        elif name and name <= words:
            words.add(acronym)
    return words


PRONOUN = re.compile(r"\b(?:it|its|they|their|them|he|his|she|her|this|these)\b", re.IGNORECASE)
_SUBJECT = re.compile(r"^(?:The\s+|A\s+|An\s+)?((?:[A-Z][\w’'.-]*\s+){0,4}[A-Z][\w’'.-]*)\s+[a-z]")


def _in_context(candidate: Candidate, spans: Sequence[tuple[int, int]], i: int) -> str:
    """A sentence, prefixed by the previous sentence's subject when it refers back with a pronoun.

    "Just this week it welcomed India" says nothing about the SCO on its own; "SCO: Just this week it
    welcomed India" does, which is what both the embedding and the word overlap need.
    """
    p = candidate.passage
    text = p.text[spans[i][0] - p.start : spans[i][1] - p.start]
    if i == 0 or not PRONOUN.search(text):
        return text
    previous = p.text[spans[i - 1][0] - p.start : spans[i - 1][1] - p.start]
    subject = _SUBJECT.match(previous)
    return f"{subject.group(1)}: {text}" if subject else text


def _passage_sentences(candidate: Candidate) -> list[tuple[int, int]]:
    p = candidate.passage
    return [(p.start + s, p.start + e) for s, e in sentence_spans(p.text)]
