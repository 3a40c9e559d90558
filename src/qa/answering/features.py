"""What the answer scorer sees: one row of numbers per candidate sentence, and one per answer.

Everything here is cheap on the serving path: sentence vectors come stored with their passages, the question
is encoded once, and the rest is word matching over the ~60 sentences of the re-ranked head.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from qa.answering.cues import ASKS_HOW, ASKS_WHY, manner_cue, negated, reason_cue
from qa.answering.support import (
    _EXPECTS,
    EXPECTED_TYPE_WEIGHT,
    OVERLAP_WEIGHT,
    PASSAGE_WEIGHT,
    PHRASE_WEIGHT,
    _acronyms,
    _in_context,
    _new_match,
    _passage_sentences,
    _sentence_vectors,
    _with_acronyms,
)
from qa.embedding import Embedder, Vectors
from qa.retrieval.hybrid import Candidate
from qa.text.words import QUESTION_WORDS, STOPWORDS, query_terms, stem

_WORD = re.compile(r"\w+")

SENTENCE_FEATURES: tuple[str, ...] = (
    "sim_sentence",  # cosine of question and sentence (the sentence's stored late-chunked vector)
    "sim_passage",  # cosine of question and passage
    "fused",  # the passage's fused retrieval score (normalised, 0..1)
    "passage_rank",  # the passage's place in the fused ranking (0 = first)
    "overlap",  # question terms in the sentence, weighted by rarity among the candidates
    "passage_overlap",  # the same over the whole passage
    "phrase",  # the question's adjacent word pairs repeated in order
    "expects",  # the question asks for a kind of thing (a date, a number, a name)
    "typed",  # ... and the sentence holds one that the question does not already say
    "asks_why",  # the question asks for a reason
    "asks_how",  # the question asks for a manner
    "reason_cue",  # the sentence gives a reason (because, due to, after, as a result ...)
    "manner_cue",  # the sentence gives a manner (by, through, using ...)
    "why_reason",  # asks_why × reason_cue
    "how_manner",  # asks_how × manner_cue
    "position",  # the sentence's place in its passage (0 = first)
    "article_lead",  # the article's first sentence
    "length",  # log of the sentence's words
    "novelty",  # share of the sentence's content words that the question does not have
    "sim_gap",  # best sim_sentence among all candidates minus this one
    "overlap_gap",  # best overlap minus this one
    "sim_order",  # log(1 + place by sim_sentence among all candidate sentences)
    "names_missing_sentence",  # share of the question's names and numbers that the sentence lacks
    "names_missing_passage",  # ... that its passage lacks
    "has_names",  # the question holds names or numbers
    "question_terms",  # log(1 + content terms in the question)
    "negation_mismatch",  # the question is negated and the sentence is not, or the other way round
    "hand_score",  # the earlier hand-weighted score (sim + 0.7 overlap + 0.2 typed/phrase/passage)
)
# From the conversation stage (follow-up questions); neutral (0) for a question asked alone.
CONTEXT_FEATURES: tuple[str, ...] = (
    "article_prior",  # weight of the sentence's article in the history's article prior
    "at_anchor",  # the sentence holds the previous answer's place in its article
    "after_anchor",  # the sentence starts within 400 characters after that place
    "anchor_distance",  # characters from that place to the sentence, / 1000, clipped to ±3
)
ALL_SENTENCE_FEATURES = SENTENCE_FEATURES + CONTEXT_FEATURES

ANSWER_FEATURES: tuple[str, ...] = (
    "lead_logit",  # the sentence model's score of the leading sentence
    "second_logit",  # the best sentence elsewhere (another span)
    "margin",  # lead_logit - second_logit
    "top3_mean",  # mean of the three best sentence scores
    "lead_sim_sentence",
    "lead_sim_passage",
    "best_sim_passage",  # the best passage cosine among the candidates
    "lead_overlap",
    "lead_passage_overlap",
    "lead_typed",
    "expects",
    "asks_why",
    "asks_how",
    "lead_names_missing_sentence",
    "lead_names_missing_passage",
    "names_missing_everywhere",  # share of the question's names and numbers found in no candidate passage
    "terms_missing_everywhere",  # share of the question's content terms found in no candidate passage
    "has_names",
    "question_terms",
    "lead_negation_mismatch",
    "lead_passage_rank",
    "lead_novelty",
)


@dataclass(frozen=True)
class TurnContext:
    """What the conversation stage knows about a follow-up: an article prior and where earlier answers sit.

    `article_prior` maps article ids to a weight (0..1); `anchors` maps article ids to the character offset of
    the previous answer in that article. Both empty for a question asked alone.
    """

    article_prior: Mapping[str, float] = field(default_factory=dict)
    anchors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QuestionTraits:
    """What is read from the question once: its terms, names, and the kind of answer it wants."""

    text: str
    terms: frozenset[str]
    names: frozenset[str]
    expects: re.Pattern[str] | None
    asks_why: bool
    asks_how: bool
    negated: bool
    bigrams: frozenset[tuple[str, str]]


def question_traits(question: str) -> QuestionTraits:
    """The question's content terms (stemmed), names and numbers, expected answer type and why/how."""
    words = _WORD.findall(question)
    names = (
        frozenset(w.lower() for i, w in enumerate(words) if (w[0].isupper() and i > 0) or any(ch.isdigit() for ch in w))
        - QUESTION_WORDS
    )
    content = [stem(t) for t in _WORD.findall(question.lower()) if t not in STOPWORDS and t not in QUESTION_WORDS]
    return QuestionTraits(
        text=question,
        terms=frozenset(stem(t) for t in query_terms(question) if t not in QUESTION_WORDS),
        names=frozenset(n for n in names if n not in STOPWORDS),
        expects=next((pattern for asks, pattern in _EXPECTS if asks.search(question)), None),
        asks_why=bool(ASKS_WHY.search(question)),
        asks_how=bool(ASKS_HOW.search(question)),
        negated=negated(question.lower()),
        bigrams=frozenset(itertools.pairwise(content)),
    )


@dataclass
class SentenceTable:
    """The candidate sentences of a question's head passages, with one feature row each."""

    question: QuestionTraits
    candidates: list[Candidate]
    spans: list[tuple[int, int]]  # article offsets of each sentence
    owner: np.ndarray  # the candidate (index into `candidates`) each sentence belongs to
    features: np.ndarray  # (sentences, len(ALL_SENTENCE_FEATURES)) float64
    articles: np.ndarray  # per sentence, which of the head's articles it is from (an index)
    question_values: np.ndarray  # names_missing_everywhere, terms_missing_everywhere
    texts: list[str] = field(default_factory=list)  # each sentence's text as scored (pronouns resolved)

    @property
    def starts(self) -> np.ndarray:
        """Each sentence's start offset in its article."""
        return np.array([s for s, _ in self.spans], dtype=np.int64)

    @property
    def ends(self) -> np.ndarray:
        """Each sentence's end offset in its article."""
        return np.array([e for _, e in self.spans], dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """One feature over all sentences."""
        return self.features[:, ALL_SENTENCE_FEATURES.index(name)]


def sentence_table(
    question: str,
    question_vector: Vectors,
    candidates: Sequence[Candidate],
    embedder: Embedder,
    context: TurnContext | None = None,
) -> SentenceTable:
    """Every sentence of the candidates with its features (see SENTENCE_FEATURES)."""
    traits = question_traits(question)
    per_candidate = [_passage_sentences(c) for c in candidates]
    texts = [_in_context(c, ss, i) for c, ss in zip(candidates, per_candidate, strict=True) for i in range(len(ss))]
    owner = np.array([i for i, ss in enumerate(per_candidate) for _ in ss], dtype=np.int64)
    spans = [span for ss in per_candidate for span in ss]
    n = len(spans)
    rows = np.zeros((n, len(ALL_SENTENCE_FEATURES)), dtype=np.float64)
    if not n:
        return SentenceTable(traits, list(candidates), spans, owner, rows, owner, np.zeros(2), texts)
    similarities = (_sentence_vectors(candidates, per_candidate, texts, embedder) @ question_vector.reshape(-1)).astype(
        np.float64
    )
    acronyms = _acronyms([c.passage.text for c in candidates])
    read = [_read(text) for text in texts]
    words = [_with_acronyms(set(r.stems), acronyms) for r in read]
    passage_words = [set().union(*(words[j] for j in np.flatnonzero(owner == i))) for i in range(len(candidates))]
    passage_raw = [_words_of(c.passage.text) for c in candidates]
    terms = sorted(traits.terms)  # sums in a fixed order: the same features, to the bit, in every process
    idf = _idf(terms, words)
    passage_idf = _idf(terms, passage_words)
    bigrams = set(traits.bigrams)
    asked = question.lower()
    position = 0
    for j in range(n):
        i = int(owner[j])
        candidate = candidates[i]
        position = 0 if j == 0 or owner[j - 1] != i else position + 1
        sentence = read[j]
        raw = sentence.words
        overlap = _overlap(idf, words[j])
        typed = 1.0 if traits.expects is not None and _new_match(traits.expects, texts[j], asked) else 0.0
        phrase = len(bigrams & sentence.pairs) / len(bigrams) if bigrams else 0.0
        reason = 1.0 if sentence.reason else 0.0
        manner = 1.0 if sentence.manner else 0.0
        row = rows[j]
        row[0] = similarities[j]
        row[1] = candidate.similarity
        row[2] = candidate.fused
        row[3] = i
        row[4] = overlap
        row[5] = _overlap(passage_idf, passage_words[i])
        row[6] = phrase
        row[7] = traits.expects is not None
        row[8] = typed
        row[9] = traits.asks_why
        row[10] = traits.asks_how
        row[11] = reason
        row[12] = manner
        row[13] = traits.asks_why * reason
        row[14] = traits.asks_how * manner
        row[15] = position
        row[16] = candidate.passage.start == 0 and position == 0
        row[17] = math.log1p(sentence.length)
        content = sentence.content
        row[18] = sum(st not in traits.terms for st in content) / len(content) if content else 0.0
        row[22] = _missing(traits.names, raw)
        row[23] = _missing(traits.names, passage_raw[i])
        row[24] = bool(traits.names)
        row[25] = math.log1p(len(traits.terms))
        row[26] = traits.negated != sentence.negated
        row[27] = (
            similarities[j]  # the hand-tuned score (as qa.answering.support weighed it), summed in its order
            + OVERLAP_WEIGHT * overlap
            + EXPECTED_TYPE_WEIGHT * typed
            + PHRASE_WEIGHT * phrase
            + PASSAGE_WEIGHT * candidate.similarity
        )
    rows[:, 19] = rows[:, 0].max() - rows[:, 0]
    rows[:, 20] = rows[:, 4].max() - rows[:, 4]
    order = np.argsort(-rows[:, 0], kind="stable")
    places = np.empty(n, dtype=np.float64)
    places[order] = np.arange(n, dtype=np.float64)
    rows[:, 21] = np.log1p(places)
    if context is not None:
        _add_context(rows, candidates, owner, spans, context)
    ids = [c.passage.article_id for c in candidates]
    articles = np.array([sorted(set(ids)).index(ids[i]) for i in owner], dtype=np.int64)
    everywhere: set[str] = set().union(*passage_raw)
    stemmed: set[str] = set().union(*passage_words)
    terms_missing = sum(t not in stemmed for t in traits.terms) / len(traits.terms) if traits.terms else 0.0
    question_values = np.array([_missing(traits.names, everywhere), terms_missing], dtype=np.float64)
    return SentenceTable(traits, list(candidates), spans, owner, rows, articles, question_values, texts)


# The caches below hold a few requests' worth of text, so that a question's sentences are read once however many
# steps look at them; across requests they save little (reading a sentence takes about 65 µs, a question's 60 of
# them 4 ms of a 500 ms answer) and a larger cache only makes a serving process grow for hours (#10's soak: a
# 20,000-sentence cache took 27 minutes to fill, at 4 MB a minute).
@lru_cache(maxsize=50_000)  # words: news vocabulary levels off; about 200 bytes each
def _stem(word: str) -> str:
    return stem(word)


@dataclass(frozen=True)
class _Reading:
    """What scoring needs of a sentence's text alone, whatever the question (cached: sentences recur)."""

    words: frozenset[str]  # its distinct words, lower-cased
    stems: tuple[str, ...]  # every word, stemmed, in order
    content: tuple[str, ...]  # the stems of its distinct words that are not stop words
    pairs: frozenset[tuple[str, str]]  # adjacent content-word stems
    length: int  # words
    reason: bool
    manner: bool
    negated: bool


@lru_cache(maxsize=2_048)  # about 2 KB each
def _read(text: str) -> _Reading:
    lowered = text.lower()
    tokens = _WORD.findall(lowered)
    stems = tuple(_stem(w) for w in tokens)
    words = frozenset(tokens)
    content_stems = [st for w, st in zip(tokens, stems, strict=True) if w not in STOPWORDS]
    return _Reading(
        words=words,
        stems=stems,
        content=tuple(_stem(w) for w in words if w not in STOPWORDS),
        pairs=frozenset(itertools.pairwise(content_stems)),
        length=len(tokens),
        reason=reason_cue(lowered),
        manner=manner_cue(lowered),
        negated=negated(lowered),
    )


@lru_cache(maxsize=256)  # about 9 KB each, and the key keeps the passage's text alive
def _words_of(text: str) -> frozenset[str]:
    """A passage's distinct words, lower-cased."""
    return frozenset(_WORD.findall(text.lower()))


def _idf(terms: Sequence[str], word_sets: Sequence[set[str]]) -> dict[str, float]:
    """Each question term's weight: rarer among the candidate sentences means more telling (in `terms` order)."""
    total = len(word_sets)
    return {t: math.log(1 + total / (1 + sum(t in words for words in word_sets))) for t in terms}


def _overlap(weights: dict[str, float], words: set[str]) -> float:
    """Share of the question's (weighted) terms that a sentence contains."""
    whole = sum(weights.values())
    return sum(w for t, w in weights.items() if t in words) / whole if whole else 0.0


def _missing(names: frozenset[str], words: frozenset[str] | set[str]) -> float:
    """Share of the question's names and numbers not among `words` (0 when it has none)."""
    return sum(n not in words for n in names) / len(names) if names else 0.0


def with_context(table: SentenceTable, context: TurnContext) -> SentenceTable:
    """The table with the conversation features of `context` (a copy; the table given is left as it is)."""
    rows = table.features.copy()
    _add_context(rows, table.candidates, table.owner, table.spans, context)
    return replace(table, features=rows)


def _add_context(
    rows: np.ndarray,
    candidates: Sequence[Candidate],
    owner: np.ndarray,
    spans: Sequence[tuple[int, int]],
    context: TurnContext,
) -> None:
    base = len(SENTENCE_FEATURES)
    for j, (start, end) in enumerate(spans):
        article = candidates[int(owner[j])].passage.article_id
        rows[j, base] = context.article_prior.get(article, 0.0)
        anchor = context.anchors.get(article)
        if anchor is None:
            continue
        rows[j, base + 1] = start <= anchor < end
        rows[j, base + 2] = 0 < start - anchor <= 400
        rows[j, base + 3] = max(-3.0, min(3.0, (start - anchor) / 1000))


def matrix(table: SentenceTable, names: Sequence[str]) -> np.ndarray:
    """The table's features in the order a model was trained with."""
    return table.features[:, [ALL_SENTENCE_FEATURES.index(name) for name in names]]


def distinct_runner_up(
    articles: np.ndarray, starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, lead: int
) -> int | None:
    """The best-scored sentence that is not the lead (nor the same span repeated in an overlapping passage)."""
    same_span = (articles == articles[lead]) & (starts < ends[lead]) & (starts[lead] < ends)
    others = np.flatnonzero(~same_span)
    return None if not len(others) else int(others[np.argmax(scores[others])])


def answer_features(table: SentenceTable, scores: np.ndarray, lead: int) -> np.ndarray:
    """One row (ANSWER_FEATURES) describing the answer that `lead` would lead, given sentence scores."""
    return answer_row(table.features, table.articles, table.starts, table.ends, table.question_values, scores, lead)


def answer_row(
    features: np.ndarray,
    articles: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    question_values: np.ndarray,
    scores: np.ndarray,
    lead: int,
) -> np.ndarray:
    """ANSWER_FEATURES from a question's sentence features and scores (arrays, so training reads the same)."""
    second = distinct_runner_up(articles, starts, ends, scores, lead)
    lead_score = float(scores[lead])
    second_score = float(scores[second]) if second is not None else lead_score - 5.0
    top = np.sort(scores)[::-1][:3]
    lead_row = features[lead]

    def at(name: str) -> float:
        return float(lead_row[ALL_SENTENCE_FEATURES.index(name)])

    values = {
        "lead_logit": lead_score,
        "second_logit": second_score,
        "margin": lead_score - second_score,
        "top3_mean": float(top.mean()),
        "lead_sim_sentence": at("sim_sentence"),
        "lead_sim_passage": at("sim_passage"),
        "best_sim_passage": float(features[:, ALL_SENTENCE_FEATURES.index("sim_passage")].max()),
        "lead_overlap": at("overlap"),
        "lead_passage_overlap": at("passage_overlap"),
        "lead_typed": at("typed"),
        "expects": at("expects"),
        "asks_why": at("asks_why"),
        "asks_how": at("asks_how"),
        "lead_names_missing_sentence": at("names_missing_sentence"),
        "lead_names_missing_passage": at("names_missing_passage"),
        "names_missing_everywhere": float(question_values[0]),
        "terms_missing_everywhere": float(question_values[1]),
        "has_names": at("has_names"),
        "question_terms": at("question_terms"),
        "lead_negation_mismatch": at("negation_mismatch"),
        "lead_passage_rank": at("passage_rank"),
        "lead_novelty": at("novelty"),
    }
    return np.array([values[name] for name in ANSWER_FEATURES], dtype=np.float64)


def passage_order(owner: np.ndarray, fused: np.ndarray, logits: np.ndarray, weight: float) -> list[int]:
    """Passages re-ordered by fused score plus `weight` × their best sentence's probability (ties keep order)."""
    best = np.full(len(fused), -np.inf)
    if len(owner):
        np.maximum.at(best, owner, logits)
    probability = 1.0 / (1.0 + np.exp(-np.clip(best, -50, 50)))
    keys = fused + weight * probability
    return sorted(range(len(fused)), key=lambda i: float(keys[i]), reverse=True)


def lead_of(owner: np.ndarray, order: Sequence[int], logits: np.ndarray, top_k: int) -> int | None:
    """The row of the best-scored sentence among the first top_k passages of `order` (None if they have none)."""
    allowed = np.isin(owner, np.asarray(order[:top_k], dtype=owner.dtype))
    if not allowed.any():
        return None
    return int(np.argmax(np.where(allowed, logits, -np.inf)))
