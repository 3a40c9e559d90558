"""Latest-state questions: among the passages that answer about equally well, the newest article leads, and the
answer says how current it is ("As of 19 October 1987: ...").

The preference cannot promote an irrelevant article: only a passage whose best sentence scores within `window`
of the best one's, and whose support (that score plus the passage's cosine) reaches `floor`, may lead; the rest
keep their order. Scores are the hand-weighted support of qa.answering.support (the learned scorer's
"hand_score" feature): unlike the learned probabilities they do not depend on a passage's place in the ranking,
so stories that say the same thing score alike. The leader's learned sentences are then lifted to lead
(`promote`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from qa.answering.support import ScoredSentence
from qa.records import Answer
from qa.retrieval.hybrid import Candidate

LIFT = 1e-3  # how far the newest near-best passage's sentences end up above the best one's
# The support (best hand-weighted sentence score + passage cosine) a passage needs to lead a latest answer: the
# hand-tuned scorer's abstention threshold, which the recency step was tuned with.
RELEVANT = 1.1


@dataclass(frozen=True)
class Recency:
    """How "latest" questions are answered: how many passages compete, and how close to the best they must be.

    Chosen on half of the subjects of ../shared/data/reuters-wire and reported on the other half
    (bench/time_questions.py; README "Time in questions").
    """

    depth: int = 20  # passages scored for a latest question (at least QA_RERANK_DEPTH)
    window: float = 0.3  # how far below the best sentence's score a newer passage's best may be
    rounds: int = 2  # searches for passages newer than the newest near-best one (0: only the first head)
    enabled: bool = True


Rescore = Callable[[list[Candidate]], tuple[list[Candidate], list[list[ScoredSentence]]]]


def newest_relevant_day(
    candidates: Sequence[Candidate], sentences: Sequence[Sequence[ScoredSentence]], window: float, floor: float
) -> date | None:
    """The newest publication date among the candidates that answer nearly as well as the best."""
    best = [max((s.score for s in ss), default=float("-inf")) for ss in sentences]
    if not best:
        return None
    top = max(best)
    days = [
        day
        for i, c in enumerate(candidates)
        if best[i] >= top - window
        and best[i] + c.similarity >= floor
        and (day := published_day(c.passage.published)) is not None
    ]
    return max(days, default=None)


def look_newer(
    candidates: list[Candidate],
    sentences: list[list[ScoredSentence]],
    newer_than: Callable[[date], list[Candidate]],
    rescore: Rescore,
    recency: Recency,
    floor: float,
) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
    """The head, joined by passages published after its newest near-best one that the first search left out.

    Many stories about one subject read alike, so the newest may rank below the head; each round searches again,
    only among articles newer than the newest near-best passage so far (`newer_than`), and scores the head
    with what it found (`rescore`: sentences scored and passages re-ranked together).
    """
    for _ in range(recency.rounds):
        day = newest_relevant_day(candidates, sentences, recency.window, floor)
        if day is None:
            break
        held = {c.passage.id for c in candidates}
        fresh = [c for c in newer_than(day + timedelta(days=1)) if c.passage.id not in held]
        if not fresh:
            break
        candidates, sentences = rescore(candidates + fresh)
    return candidates, sentences


def published_day(published: str | None) -> date | None:
    """The date of an ISO publication date (or date and time); None for anything else."""
    if not published or len(published) < 10:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        return None


def newest_near_best(
    candidates: Sequence[Candidate], sentences: Sequence[Sequence[ScoredSentence]], window: float, floor: float
) -> int | None:
    """The candidate that should lead a latest answer: the newest dated one whose best sentence scores within
    `window` of the best and whose support reaches `floor`; None when that is the best one already."""
    best = [max((s.score for s in ss), default=float("-inf")) for ss in sentences]
    if not best:
        return None
    top = max(range(len(best)), key=lambda i: best[i])
    near = [
        (day, best[i], -i)
        for i in range(len(candidates))
        if best[i] >= best[top] - window
        and best[i] + candidates[i].similarity >= floor
        and (day := published_day(candidates[i].passage.published)) is not None
    ]
    if not near:
        return None
    newest, _, minus_leader = max(near)
    top_day = published_day(candidates[top].passage.published)
    if -minus_leader == top or (top_day is not None and top_day >= newest):
        return None
    return -minus_leader


def promote(
    candidates: Sequence[Candidate], sentences: Sequence[Sequence[ScoredSentence]], leader: int | None
) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
    """The candidates with `leader` first and its sentences lifted just above the best (unchanged for None)."""
    if leader is None:
        return list(candidates), [list(ss) for ss in sentences]
    top = max(s.score for ss in sentences for s in ss)
    lift = top - max(s.score for s in sentences[leader]) + LIFT
    order = [leader, *(i for i in range(len(candidates)) if i != leader)]
    moved = [
        [replace(s, candidate=new, score=s.score + (lift if old == leader else 0.0)) for s in sentences[old]]
        for new, old in enumerate(order)
    ]
    return [candidates[i] for i in order], moved


def dated(answer: Answer) -> Answer:
    """The answer introduced by its first citation's date ("As of 19 October 1987: ..."), when it has one."""
    if answer.abstained or not answer.citations:
        return answer
    day = published_day(answer.citations[0].published)
    if day is None:
        return answer
    return answer.model_copy(update={"answer": f"As of {long_date(day)}: {answer.answer}"})


_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def long_date(day: date) -> str:
    """19 October 1987: unambiguous in every locale (no 10/19 against 19/10), whatever the process's locale."""
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"
