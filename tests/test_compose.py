"""Answer composition on hand-made candidates and sentence scores (no model, no index).

Sentence scores are the scorer's probabilities that a sentence answers; `compose` takes the answer's confidence
and the threshold below which it is withheld.
"""

from __future__ import annotations

from qa.answering.compose import NOT_FOUND, compose, hits_for
from qa.answering.support import ScoredSentence
from qa.backends.base import PassageRow
from qa.retrieval.hybrid import Candidate

TEXT = "The dam was finished in 1936. It holds back Lake Mead. Tourists visit it every summer."
#       0                            30                       55


def candidate(passage_id: int, article: str, text: str = TEXT, similarity: float = 0.5) -> Candidate:
    row = PassageRow(passage_id, article, article.title(), None, None, 0, len(text), text)
    return Candidate(row, similarity, fused=1.0)


def sentences(rank: int, article: str, scores: list[float], text: str = TEXT) -> list[ScoredSentence]:
    spans = [(0, 29), (30, 54), (55, len(text))]
    return [ScoredSentence(rank, article, s, e, score) for (s, e), score in zip(spans, scores, strict=True)]


def test_the_best_sentence_leads_and_cites_its_passage() -> None:
    scored = [sentences(0, "dam", [0.9, 0.03, 0.02])]
    answer = compose("When was the dam finished?", [candidate(1, "dam")], scored, 0.8, 0.3)
    assert not answer.abstained and answer.confidence == 0.8
    assert answer.answer == "The dam was finished in 1936. [1]"
    assert answer.citations[0].highlight == (0, 29) and answer.citations[0].article_id == "dam"


def test_a_confidence_below_the_threshold_is_an_abstention() -> None:
    answer = compose("Who built it?", [candidate(1, "dam")], [sentences(0, "dam", [0.2, 0.1, 0.1])], 0.12, 0.3)
    assert answer.abstained and answer.answer == NOT_FOUND and answer.citations == []
    assert answer.confidence == 0.12  # an abstention says how unsure it was


def test_a_sentence_that_continues_the_best_one_joins_it_under_one_citation() -> None:
    # "It holds back Lake Mead." refers back with a pronoun and directly follows: the two are one span.
    scored = [sentences(0, "dam", [0.9, 0.5, 0.1])]
    answer = compose("What does the dam hold?", [candidate(1, "dam")], scored, 0.8, 0.3)
    assert answer.answer == "The dam was finished in 1936. [1] It holds back Lake Mead. [1]"
    assert answer.citations[0].highlight == (0, 54)


def test_a_near_tie_from_another_article_joins_with_its_own_citation() -> None:
    other = "Hoover Dam was built by six companies."
    candidates = [candidate(1, "dam"), candidate(2, "builders", other)]
    scored = [sentences(0, "dam", [0.9, 0.03, 0.01]), [ScoredSentence(1, "builders", 0, len(other), 0.85)]]
    answer = compose("Who built the dam?", candidates, scored, 0.8, 0.3)
    assert answer.answer == f"The dam was finished in 1936. [1] {other} [2]"
    assert [c.article_id for c in answer.citations] == ["dam", "builders"]


def test_a_weaker_runner_up_stays_out_of_the_answer_but_is_cited_as_a_source() -> None:
    other = "Hoover Dam was built by six companies."
    candidates = [candidate(1, "dam"), candidate(2, "builders", other)]
    scored = [sentences(0, "dam", [0.9, 0.03, 0.01]), [ScoredSentence(1, "builders", 0, len(other), 0.6)]]
    answer = compose("When was the dam finished?", candidates, scored, 0.8, 0.3)
    assert answer.answer == "The dam was finished in 1936. [1]"
    assert [c.n for c in answer.citations] == [1, 2] and answer.citations[1].highlight == (0, len(other))
    # A passage whose best sentence is under a tenth as likely as the lead is not cited at all.
    scored[1] = [ScoredSentence(1, "builders", 0, len(other), 0.05)]
    answer = compose("When was the dam finished?", candidates, scored, 0.8, 0.3)
    assert [c.article_id for c in answer.citations] == ["dam"]


def test_search_hits_highlight_each_passages_best_sentence() -> None:
    [hit] = hits_for([candidate(1, "dam")], [sentences(0, "dam", [0.1, 0.2, 0.9])])
    assert hit.highlight == (55, len(TEXT)) and hit.article_id == "dam"
