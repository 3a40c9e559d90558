"""The head of a ranking, scored: passages re-ordered by their best sentence, the lead, the confidence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.answering.features import SentenceTable, lead_of
from qa.answering.scorer import AnswerScorer, _sigmoid
from qa.answering.support import ScoredSentence
from qa.retrieval.hybrid import Candidate


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
        probability = _sigmoid(self.logits)
        place = {candidate: rank for rank, candidate in enumerate(self.order)}
        out: list[list[ScoredSentence]] = [[] for _ in self.order]
        for j, (start, end) in enumerate(self.table.spans):
            owner = int(self.table.owner[j])
            article = self.table.candidates[owner].passage.article_id
            out[place[owner]].append(ScoredSentence(place[owner], article, start, end, float(probability[j])))
        return out

    def lead(self, top_k: int) -> int | None:
        """The table row of the best sentence among the first top_k passages (None when they have none)."""
        return lead_of(self.table.owner, self.order, self.logits, top_k)

    def confidence(self, top_k: int) -> float:
        """Calibrated probability that the answer from the first top_k passages is right (0 with no sentence)."""
        lead = self.lead(top_k)
        return 0.0 if lead is None else self.scorer.confidence(self.table, self.logits, lead)


# Until the sentence model is trained with the conversation features (TurnContext), a follow-up's sentences from
# the articles its conversation's earlier answers cited get this much more log-odds (0 for a question alone).
HISTORY_LOGIT = 1.0


def score_head(table: SentenceTable, scorer: AnswerScorer, rerank: bool = True) -> ScoredHead:
    """Score every sentence of the head and, when `rerank`, re-order its passages by their best sentence."""
    logits = scorer.sentence_logits(table)
    if "article_prior" not in scorer.sentence.features:
        logits = logits + HISTORY_LOGIT * table.column("article_prior")
    order = scorer.passage_order(table, logits) if rerank else list(range(len(table.candidates)))
    return ScoredHead(table, logits, order, scorer)
