"""A follow-up question's conversation context: the text to search, the articles in play, the previous answer's place.

The context is plain data that retrieval (`boost`) and sentence scoring (`sentence_bonus`, `after_anchor`) take
as an optional argument, so a learned scorer can read the same signals as features.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qa.backends.base import Backend
from qa.conversation.anchor import ArticleSentences, locate
from qa.conversation.followup import history_text, own_terms, search_text, stands_alone, words
from qa.embedding import Embedder
from qa.records import Turn
from qa.retrieval.hybrid import retrieve
from qa.text.words import stem

CHANGE_DEPTH = 20  # passages the topic-change check looks at outside the conversation's articles
CITED_TURNS = 3  # turns whose cited articles (article_ids) join the prior
CITED_PER_TURN = 5  # at most this many of each turn's


@dataclass(frozen=True)
class ConversationWeights:
    """How much the conversation counts against the question's own words (each measured, see the README)."""

    history_turns: int = 0  # turns whose text is searched for the article prior (0: all that are given)
    prior_depth: int = 20  # passages retrieved for the history text
    prior_share: float = 0.7  # articles whose history score reaches this share of the best are in the prior
    prior_articles: int = 2  # at most this many
    follow_up_boost: float = 1.0  # added to the fused score of the prior articles' passages, for a follow-up
    standalone_boost: float = 0.3  # ... for a question that stands alone (it may change the subject)
    cited_weight: float = 1.0  # prior of an article the last turn cited (given article_ids); older turns decay
    carry_query: bool = True  # a follow-up searches its question plus the recent turns' key words
    carry_terms: int = 8
    anchor: tuple[float, ...] = (0.3, 0.2, 0.1, 0.05)  # bonus for the sentence 0, 1, 2, ... after the previous answer
    anchor_before: float = 0.05  # bonus for sentences before it
    anchor_turns: int = 3  # turns placed in the article to follow the thread
    anchor_meaning: bool = True  # place them by the questions' meaning too (stored sentence vectors)
    prior_sentence: float = 1.0  # bonus for any sentence of a prior article, times its prior
    change_margin: float = 0.15  # a stand-alone question changes the subject when its best passage elsewhere
    change_margin_follow_up: float = 0.4  # ... is this much closer (cosine) than any of the prior's (follow-up)
    change_needs_new_words: bool = True  # ... and that article holds words of it that the prior's do not


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
    query: str
    standalone: bool = True
    changed_topic: bool = False  # the question left the articles the earlier turns were about
    prior: Mapping[str, float] = field(default_factory=dict)  # article id -> 0..1
    anchors: Mapping[str, Anchor] = field(default_factory=dict)
    boost: Mapping[int, float] = field(default_factory=dict)  # passage id -> added to its fused score
    weights: ConversationWeights = ConversationWeights()

    @classmethod
    def alone(cls, question: str) -> ConversationContext:
        """A question with no history: searched as it is."""
        return cls(question=question, query=question)

    @property
    def has_history(self) -> bool:
        """Whether any earlier turn shaped this context."""
        return bool(self.prior or self.anchors or self.query != self.question)

    def after_anchor(self, article_id: str, start: int) -> int | None:
        """Sentences between the previous answer and the sentence at `start` in this article, when placed there."""
        anchor = self.anchors.get(article_id)
        return None if anchor is None else anchor.distance(start)

    def sentence_bonus(self, article_id: str, start: int) -> float:
        """What the conversation adds to a sentence's score: near after the previous answer, in a prior article."""
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
    """The context of `question` after `history` (oldest first): one extra retrieval, of the history's text."""
    if not history:
        return ConversationContext.alone(question)
    standalone = stands_alone(question, history)
    prior = _prior(backend, embedder, history, weights, fusion, dense_weight)
    passages = {article_id: backend.passage_ids(article_id) for article_id in prior}
    texts = {article_id: article.text for article_id in prior if (article := backend.article(article_id))}
    if prior and _changes_topic(backend, embedder, question, standalone, passages, texts, weights):
        return ConversationContext(question, question, standalone, changed_topic=True, weights=weights)
    query = question if standalone or not weights.carry_query else search_text(question, history, weights.carry_terms)
    boost_weight = weights.standalone_boost if standalone else weights.follow_up_boost
    boost = {p: boost_weight * prior[a] for a, ids in passages.items() for p in ids}
    anchors = _anchors(backend, embedder, history, passages, texts, weights)
    return ConversationContext(question, query, standalone, False, prior, anchors, boost, weights)


def _anchors(
    backend: Backend,
    embedder: Embedder,
    history: Sequence[Turn],
    passages: Mapping[str, Sequence[int]],
    texts: Mapping[str, str],
    weights: ConversationWeights,
) -> dict[str, Anchor]:
    """Where the last turn's answer sits in each prior article, following the thread of the turns before it."""
    if not texts or not weights.anchor_turns:
        return {}
    recent = history[-weights.anchor_turns :]
    vectors = embedder.encode_cached([t.question for t in recent]) if weights.anchor_meaning else None
    anchors: dict[str, Anchor] = {}
    for article_id, text in texts.items():
        rows = backend.passages(passages.get(article_id, [])) if vectors is not None else {}
        article = ArticleSentences.of(text, list(rows.values()))
        place = locate(recent, article, len(recent), vectors)
        if place is not None:
            anchors[article_id] = Anchor(place, article.starts)
    return anchors


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
    if not weights.change_needs_new_words:
        return True
    new = {stem(t) for t in own_terms(question)} - {stem(w) for text in texts.values() for w in words(text)}
    row = backend.passages([outside[0][0]]).get(outside[0][0])
    elsewhere = backend.article(row.article_id) if row is not None else None
    return elsewhere is not None and bool(new & {stem(w) for w in words(elsewhere.text)})


def _prior(
    backend: Backend,
    embedder: Embedder,
    history: Sequence[Turn],
    weights: ConversationWeights,
    fusion: str,
    dense_weight: float,
) -> dict[str, float]:
    """Articles the conversation is about, 0..1: those the last turns cited, and those their text finds."""
    prior: dict[str, float] = {}
    for age, turn in enumerate(reversed(history[-CITED_TURNS:])):
        for article_id in turn.article_ids[:CITED_PER_TURN]:
            if article_id not in prior and backend.article(article_id) is not None:
                prior[article_id] = weights.cited_weight / (1 + age)
    text = history_text(history, weights.history_turns)
    if text:
        vector = embedder.encode_cached([text])[0]
        ranking = retrieve(backend, text, vector, weights.prior_depth, fusion=fusion, dense_weight=dense_weight)
        by_article: dict[str, float] = {}
        for candidate in ranking:
            article_id = candidate.passage.article_id
            by_article[article_id] = max(by_article.get(article_id, 0.0), candidate.fused)
        top = max(by_article.values(), default=0.0)
        if top > 0:
            for article_id, score in by_article.items():
                if score >= weights.prior_share * top:
                    prior[article_id] = max(prior.get(article_id, 0.0), score / top)
    best = sorted(prior, key=lambda a: prior[a], reverse=True)[: weights.prior_articles]
    return {a: prior[a] for a in best}
