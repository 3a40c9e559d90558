"""The head of a ranking, scored: passages re-ordered by their best sentence, the lead, the confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.answering.features import SentenceTable, lead_of
from qa.answering.scorer import AnswerScorer, _sigmoid
from qa.answering.support import ScoredSentence
from qa.retrieval.hybrid import Candidate

if TYPE_CHECKING:
    from qa.conversation.context import ConversationContext


@dataclass
class ScoredHead:
    """The re-ranked head: candidates best first, their sentences with probabilities, and what leads."""

    table: SentenceTable
    logits: np.ndarray  # per sentence of the table, the sentence model's log-odds
    order: list[int]  # the table's candidates, best first
    scorer: AnswerScorer

    @property
    def candidates(self) -> list[Candidate]:
        """The head's passages, best first."""
        return [self.table.candidates[i] for i in self.order]

    @property
    def sentences(self) -> list[list[ScoredSentence]]:
        """Each passage's sentences (in `candidates` order), scored by the probability that they answer."""
        return self._sentences(_sigmoid(self.logits))

    @property
    def hand_scored(self) -> list[list[ScoredSentence]]:
        """The same sentences scored by the hand-weighted support that came before the learned scorer (a feature of
        it): unlike the probabilities, it does not depend on a passage's rank, so near-identical stories score alike
        (what the recency step compares)."""
        return self._sentences(self.table.column("hand_score"))

    def _sentences(self, scores: np.ndarray) -> list[list[ScoredSentence]]:
        place = {candidate: rank for rank, candidate in enumerate(self.order)}
        out: list[list[ScoredSentence]] = [[] for _ in self.order]
        for j, (start, end) in enumerate(self.table.spans):
            owner = int(self.table.owner[j])
            article = self.table.candidates[owner].passage.article_id
            out[place[owner]].append(ScoredSentence(place[owner], article, start, end, float(scores[j])))
        return out

    def lead(self, top_k: int) -> int | None:
        """The table row of the best sentence among the first top_k passages (None when they have none)."""
        return lead_of(self.table.owner, self.order, self.logits, top_k)

    def confidence(self, top_k: int) -> float:
        """Calibrated probability that the answer from the first top_k passages is right (0 with no sentence)."""
        lead = self.lead(top_k)
        return 0.0 if lead is None else self.scorer.confidence(self.table, self.logits, lead)


# Until the sentence model is trained with the conversation features (TurnContext), the conversation stage's bonus
# (qa.conversation: in the thread's articles, at and just after the previous answer; tuned in the hand-weighted
# scorer's units) is added to a follow-up's sentences at this many log-odds per unit, chosen on coqa-wiki's even half.
LOGIT_PER_BONUS = 4.0


def conversation_bonus(table: SentenceTable, context: ConversationContext) -> np.ndarray:
    """Per sentence of the table, the log-odds the conversation adds (0 everywhere for a question alone)."""
    bonus = np.zeros(len(table.spans), dtype=np.float64)
    if not context.prior and not context.anchors:
        return bonus
    for j, (start, _) in enumerate(table.spans):
        article = table.candidates[int(table.owner[j])].passage.article_id
        bonus[j] = LOGIT_PER_BONUS * context.sentence_bonus(article, start)
    return bonus


def score_head(
    table: SentenceTable, scorer: AnswerScorer, rerank: bool = True, context: ConversationContext | None = None
) -> ScoredHead:
    """Score every sentence of the head (with the conversation's bonus, when a model does not read the
    conversation features itself) and, when `rerank`, re-order its passages by their best sentence."""
    logits = scorer.sentence_logits(table)
    if context is not None and "article_prior" not in scorer.sentence.features:
        logits = logits + conversation_bonus(table, context)
    order = scorer.passage_order(table, logits) if rerank else list(range(len(table.candidates)))
    return ScoredHead(table, logits, order, scorer)
