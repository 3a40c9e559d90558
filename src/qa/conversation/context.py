"""A follow-up question's conversation context: the text to search, the articles in play, the previous answer's place.

The context is plain data that retrieval (`boost`, `search_vector`) and sentence scoring (`sentence_bonus`,
`after_anchor`) take as an optional argument, so a learned scorer can read the same signals as features. Every
weight below was measured on coqa-wiki (split by story); docs/conversation.md has the log.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.backends.base import Backend
from qa.conversation.anchor import ArticleSentences, locate
from qa.conversation.followup import history_text, own_terms, search_text, stands_alone, turn_text, words
from qa.embedding import Embedder, Vectors
from qa.records import Turn
from qa.retrieval.hybrid import retrieve
from qa.text.words import stem

CHANGE_DEPTH = 20  # passages the topic-change check looks at outside the conversation's articles
CITED_TURNS = 3  # turns whose cited articles (article_ids) join the prior
CITED_PER_TURN = 5  # at most this many of each turn's


@dataclass(frozen=True)
class ConversationWeights:
    """How much the conversation counts against the question's own words."""

    history_turns: int = 0  # turns searched for the article prior (0: all that are given)
    prior_depth: int = 20  # passages retrieved for them
    prior_share: float = 0.7  # articles scoring at least this share of the best are in the prior ...
    prior_articles: int = 2  # ... at most this many
    cited_weight: float = 1.0  # prior of an article the last turn cited; a turn before that counts 1/2, then 1/3
    follow_up_boost: float = 1.0  # added to the fused score of the prior articles' passages, for a follow-up
    standalone_boost: float = 0.3  # ... for a question that stands alone
    prior_sentence: float = 1.0  # added to the score of a prior article's sentences, times its prior
    carry_terms: int = 8  # key words of the recent turns a follow-up's lexical search adds
    carry_vector: float = 0.5  # weight of the turns' mean vector added to a follow-up's vector (dense search)
    anchor: tuple[float, ...] = (0.3, 0.2, 0.1, 0.05)  # added to the sentence 0, 1, 2, 3 after the previous answer
    anchor_before: float = 0.05  # ... and to the sentences before it
    anchor_turns: int = 3  # turns placed in the article to follow the thread
    change_margin: float = 0.15  # a stand-alone question changes the subject when a passage elsewhere is this much
    change_margin_follow_up: float = 0.4  # ... (or, for a follow-up, this much) closer than any of the prior's


@dataclass(frozen=True)
class Anchor:
    """Where the previous answer sits in one article: its sentence, and every sentence's start offset."""

    sentence: int
    sentence_starts: tuple[int, ...]

    def distance(self, start: int) -> int:
        """How many sentences after the anchor the sentence starting at `start` is (negative: before)."""
        return bisect.bisect_right(self.sentence_starts, start) - 1 - self.sentence


@dataclass(frozen=True)
class ConversationContext:
    """What the earlier turns tell about a question; `alone()` when there are none."""

    question: str
    query: str  # what the lexical leg searches: the question, plus the recent turns' key words for a follow-up
    standalone: bool = True
    changed_topic: bool = False  # the question left the articles the earlier turns were about
    prior: Mapping[str, float] = field(default_factory=dict)  # article id -> 0..1
    anchors: Mapping[str, Anchor] = field(default_factory=dict)
    boost: Mapping[int, float] = field(default_factory=dict)  # passage id -> added to its fused score
    topic_vector: Vectors | None = None  # the recent turns' mean vector, for a follow-up's dense search
    weights: ConversationWeights = ConversationWeights()

    @classmethod
    def alone(cls, question: str) -> ConversationContext:
        """A question with no history: searched as it is."""
        return cls(question=question, query=question)

    def search_vector(self, question_vector: Vectors) -> Vectors:
        """The dense leg's vector: the question's, moved toward the conversation's topic for a follow-up."""
        if self.topic_vector is None or self.query == self.question:
            return question_vector
        mixed = question_vector + self.weights.carry_vector * self.topic_vector
        result: Vectors = (mixed / max(float(np.linalg.norm(mixed)), 1e-9)).astype(np.float32)
        return result

    def after_anchor(self, article_id: str, start: int) -> int | None:
        """Sentences between the previous answer and the sentence at `start` in this article, when placed there."""
        anchor = self.anchors.get(article_id)
        return None if anchor is None else anchor.distance(start)

    def sentence_bonus(self, article_id: str, start: int) -> float:
        """What the conversation adds to a sentence's score: in a prior article, at or after the previous answer."""
        bonus = self.weights.prior_sentence * self.prior.get(article_id, 0.0)
        distance = self.after_anchor(article_id, start)
        if distance is not None:
            if distance < 0:
                bonus += self.weights.anchor_before
            elif distance < len(self.weights.anchor):
                bonus += self.weights.anchor[distance]
        return bonus


def build_context(
    backend: Backend,
    embedder: Embedder,
    question: str,
    history: Sequence[Turn],
    weights: ConversationWeights = ConversationWeights(),
    fusion: str = "score",
    dense_weight: float = 0.5,
) -> ConversationContext:
    """The context of `question` after `history` (oldest first).

    It costs one extra retrieval (the turns' text, for the article prior) and one model pass over the texts not
    seen before (in a conversation, the newest turn; the questions were encoded when they were asked).
    """
    if not history:
        return ConversationContext.alone(question)
    recent = history[-weights.history_turns :] if weights.history_turns else history
    placed = history[-weights.anchor_turns :] if weights.anchor_turns else []
    embedder.encode_cached([question, *(turn_text(t) for t in recent), *(t.question for t in placed)])
    standalone = stands_alone(question, history)
    prior, topic_vector = _prior(backend, embedder, history, recent, weights, fusion, dense_weight)
    passages = {article_id: backend.passage_ids(article_id) for article_id in prior}
    texts = {article_id: article.text for article_id in prior if (article := backend.article(article_id))}
    if prior and _changes_topic(backend, embedder, question, standalone, passages, texts, weights):
        return ConversationContext(question, question, standalone, changed_topic=True, weights=weights)
    query = question if standalone else search_text(question, history, weights.carry_terms)
    boost_weight = weights.standalone_boost if standalone else weights.follow_up_boost
    boost = {p: boost_weight * prior[a] for a, ids in passages.items() for p in ids}
    anchors = _anchors(backend, embedder, placed, passages, texts)
    return ConversationContext(question, query, standalone, False, prior, anchors, boost, topic_vector, weights)


def _prior(
    backend: Backend,
    embedder: Embedder,
    history: Sequence[Turn],
    recent: Sequence[Turn],
    weights: ConversationWeights,
    fusion: str,
    dense_weight: float,
) -> tuple[dict[str, float], Vectors]:
    """Articles the conversation is about (0..1), and the turns' mean vector.

    The articles are those the last turns cited (article_ids) and those a search for the turns finds: their
    words in the lexical leg, the mean of their vectors in the dense one (each turn's vector is computed once per
    process, so a long conversation costs no more than a short one).
    """
    prior: dict[str, float] = {}
    for age, turn in enumerate(reversed(history[-CITED_TURNS:])):
        for article_id in turn.article_ids[:CITED_PER_TURN]:
            if article_id not in prior and backend.article(article_id) is not None:
                prior[article_id] = weights.cited_weight / (1 + age)
    mean = embedder.encode_cached([turn_text(t) for t in recent]).mean(axis=0)
    vector: Vectors = (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)
    text = history_text(recent)
    ranking = retrieve(backend, text, vector, weights.prior_depth, fusion=fusion, dense_weight=dense_weight)
    by_article: dict[str, float] = {}
    for candidate in ranking:
        article_id = candidate.passage.article_id
        by_article[article_id] = max(by_article.get(article_id, 0.0), candidate.fused)
    top = max(by_article.values(), default=0.0)
    for article_id, score in by_article.items():
        if top > 0 and score >= weights.prior_share * top:
            prior[article_id] = max(prior.get(article_id, 0.0), score / top)
    best = sorted(prior, key=lambda a: prior[a], reverse=True)[: weights.prior_articles]
    return {a: prior[a] for a in best}, vector


def _changes_topic(
    backend: Backend,
    embedder: Embedder,
    question: str,
    standalone: bool,
    passages: Mapping[str, Sequence[int]],
    texts: Mapping[str, str],
    weights: ConversationWeights,
) -> bool:
    """Whether the question leaves the conversation's articles for another one.

    It does when a passage elsewhere is clearly closer to it (a cosine margin over the prior articles' best
    passage, larger for a question that refers back) and that passage's article holds words of the question
    that the prior articles do not ("Who painted the Mona Lisa?" after questions about Kazakhstan).
    """
    vector = embedder.encode_cached([question])[0]
    inside = {p for ids in passages.values() for p in ids}
    best_inside = max(backend.similarity(vector, list(inside)).values(), default=-1.0)
    outside = [(p, s) for p, s in backend.dense(vector, CHANGE_DEPTH) if p not in inside]
    margin = weights.change_margin if standalone else weights.change_margin_follow_up
    if not outside or outside[0][1] - best_inside <= margin:
        return False
    new = {stem(t) for t in own_terms(question)} - {stem(w) for text in texts.values() for w in words(text)}
    row = backend.passages([outside[0][0]]).get(outside[0][0])
    elsewhere = backend.article(row.article_id) if row is not None else None
    return elsewhere is not None and bool(new & {stem(w) for w in words(elsewhere.text)})


def _anchors(
    backend: Backend,
    embedder: Embedder,
    placed: Sequence[Turn],
    passages: Mapping[str, Sequence[int]],
    texts: Mapping[str, str],
) -> dict[str, Anchor]:
    """Where the last turn's answer sits in each prior article, following the thread of the turns before it.

    The turns are placed by their answers' words and their questions' words and meaning (the articles' stored
    sentence vectors against the questions' vectors).
    """
    if not placed:
        return {}
    vectors = embedder.encode_cached([t.question for t in placed])
    anchors: dict[str, Anchor] = {}
    for article_id, text in texts.items():
        rows = backend.passages(passages.get(article_id, []))
        article = ArticleSentences.of(text, list(rows.values()))
        place = locate(placed, article, len(placed), vectors)
        if place is not None:
            anchors[article_id] = Anchor(place, article.starts)
    return anchors
