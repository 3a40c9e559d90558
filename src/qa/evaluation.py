"""`qa eval`: retrieval, answer and abstention quality on a question set, through the same path as /api/ask.

A dataset is a folder with articles.jsonl (id, title, text, ...) and questions.jsonl (id, question,
article_id, answers, answerable). A passage "hits" a question when it contains one of the accepted answers
after lower-casing and collapsing white space: the top-k accuracy of the DPR paper. Retrieval and answer
figures are over the answerable questions; unanswerable ones (SQuAD 2.0 style) measure abstention.

Every question is answered with no confidence threshold, then withheld when its confidence is below the
service's (QA_MIN_CONFIDENCE): the same answers as /api/ask, and calibration (ECE, the reliability table)
can be measured over every question, withheld or not.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel

from qa.answering.cues import asks_reason_or_manner
from qa.answering.reliability import (
    ReliabilityBin,
    balanced_accuracy,
    expected_calibration_error,
    reliability_table,
)
from qa.errors import QAError
from qa.progress import Progress
from qa.records import Answer
from qa.retrieval.hybrid import Candidate
from qa.service import QA

HIT_AT = (1, 5, 20)


class Question(BaseModel):
    """One question with the answers that count as right."""

    id: str
    question: str
    article_id: str | None = None
    answers: list[str] = []
    answerable: bool = True


@dataclass
class Outcome:
    """What the system did with one question."""

    question: Question
    first_hit: int | None  # rank (1-based) of the first passage holding an answer, within the top 20
    article_in_top5: bool
    answer_right: bool
    abstained: bool
    seconds: float
    confidence: float = 0.0
    would_be_right: bool = False  # the answer's first sentence holds an answer, withheld or not


@dataclass
class Report:
    """Aggregated metrics; `as_dict` is what --json prints."""

    dataset: str
    questions: int
    passages: int
    mean_passage_words: float
    hits: dict[int, float]
    mrr: float
    article_recall_at_5: float
    answer_accuracy: float
    answered_share: float
    latency_ms: dict[str, float]
    offtopic_questions: int = 0
    offtopic_abstained: float | None = None
    abstention_accuracy: float | None = None
    min_confidence: float = 0.0
    unanswerable_questions: int = 0
    abstained_when_unanswerable: float | None = None
    unanswerable_balanced_accuracy: float | None = None
    ece: float = 0.0
    reliability: list[ReliabilityBin] = field(default_factory=list)
    why_how_questions: int = 0  # answerable questions asking for a reason or a manner (why, how, not how many)
    why_how_answer_accuracy: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        out = dict(self.__dict__)
        out["hits"] = {f"hit@{k}": round(v, 4) for k, v in self.hits.items()}
        out["reliability"] = [
            {
                "confidence_from": b.low,
                "confidence_to": round(b.high, 2),
                "answers": b.answers,
                "mean_confidence": round(b.confidence, 4),
                "right": round(b.right, 4),
            }
            for b in self.reliability
        ]
        return out


def normalise(text: str) -> str:
    """Lower-cased, white space collapsed."""
    return " ".join(text.lower().split())


def load_questions(folder: Path) -> list[Question]:
    """The questions of a dataset folder."""
    path = folder / "questions.jsonl"
    if not path.exists():
        raise QAError(f"{folder}: no questions.jsonl (expected articles.jsonl and questions.jsonl)")
    with path.open(encoding="utf-8") as f:
        return [Question.model_validate_json(line) for line in f if line.strip()]


def judge(
    question: Question, answer: Answer, ranking: Sequence[Candidate], seconds: float, min_confidence: float = 0.0
) -> Outcome:
    """Score one answered question; an answer below `min_confidence` counts as withheld."""
    accepted = [normalise(a) for a in question.answers if a.strip()]
    first_hit = next(
        (rank for rank, c in enumerate(ranking[: max(HIT_AT)], start=1) if _holds(c.passage.text, accepted)), None
    )
    articles = {c.passage.article_id for c in ranking[:5]}
    first_sentence = re.split(r"\s\[\d+\]", answer.answer, maxsplit=1)[0]
    would_be_right = not answer.abstained and bool(accepted) and _holds(first_sentence, accepted)
    abstained = answer.abstained or answer.confidence < min_confidence
    return Outcome(
        question=question,
        first_hit=first_hit,
        article_in_top5=question.article_id in articles,
        answer_right=would_be_right and not abstained,
        abstained=abstained,
        seconds=seconds,
        confidence=answer.confidence,
        would_be_right=would_be_right,
    )


def _holds(text: str, accepted: Sequence[str]) -> bool:
    folded = normalise(text)
    return any(a in folded for a in accepted)


def run(
    qa: QA,
    questions: Sequence[Question],
    offtopic: Sequence[Question] = (),
    progress: Progress | None = None,
    dataset: str = "",
) -> Report:
    """Ask every question (and every off-topic one) and aggregate the metrics."""
    if progress is not None:
        progress.total = len(questions) + len(offtopic)
    asked = [_ask(qa, q, progress) for q in questions]
    off = [replace(_ask(qa, q, progress), answer_right=False, would_be_right=False) for q in offtopic]
    outcomes = [o for o in asked if o.question.answerable]
    unanswerable = [o for o in asked if not o.question.answerable]
    n = len(outcomes) or 1
    hits = {k: sum(o.first_hit is not None and o.first_hit <= k for o in outcomes) / n for k in HIT_AT}
    latencies = sorted(o.seconds * 1000 for o in asked + off) or [0.0]
    answered = sum(not o.abstained for o in outcomes) / n
    report = Report(
        dataset=dataset,
        questions=len(outcomes),
        passages=qa.counts()[1],
        mean_passage_words=round(qa.mean_passage_words(), 1),
        hits=hits,
        mrr=round(sum(1 / o.first_hit for o in outcomes if o.first_hit) / n, 4),
        article_recall_at_5=round(sum(o.article_in_top5 for o in outcomes) / n, 4),
        answer_accuracy=round(sum(o.answer_right for o in outcomes) / n, 4),
        answered_share=round(answered, 4),
        latency_ms={
            "p50": round(statistics.median(latencies), 1),
            "p95": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 1),
        },
        min_confidence=qa.min_confidence,
    )
    why_how = [o for o in outcomes if asks_reason_or_manner(o.question.question)]
    if why_how:
        report.why_how_questions = len(why_how)
        report.why_how_answer_accuracy = round(sum(o.answer_right for o in why_how) / len(why_how), 4)
    everything = asked + off
    report.reliability = reliability_table([o.confidence for o in everything], [o.would_be_right for o in everything])
    report.ece = round(expected_calibration_error(report.reliability), 4)
    if unanswerable:
        abstained_when_not = sum(o.abstained for o in unanswerable) / len(unanswerable)
        report.unanswerable_questions = len(unanswerable)
        report.abstained_when_unanswerable = round(abstained_when_not, 4)
        report.unanswerable_balanced_accuracy = round(balanced_accuracy(answered, abstained_when_not), 4)
    if off:
        abstained = sum(o.abstained for o in off) / len(off)
        report.offtopic_questions = len(off)
        report.offtopic_abstained = round(abstained, 4)
        report.abstention_accuracy = round(balanced_accuracy(answered, abstained), 4)
    return report


def _ask(qa: QA, question: Question, progress: Progress | None) -> Outcome:
    started = time.perf_counter()
    answer, ranking = qa.ask_ranked(question.question, top_k=5, depth=max(HIT_AT), min_confidence=0.0)
    outcome = judge(question, answer, ranking, time.perf_counter() - started, qa.min_confidence)
    if progress is not None:
        progress.update(1)
    return outcome


def format_table(report: Report) -> str:
    """A readable summary."""
    lines = [
        f"dataset            {report.dataset}",
        f"questions          {report.questions}  (passages {report.passages}, mean {report.mean_passage_words} words)",
        "hit@1 / @5 / @20   " + " / ".join(f"{report.hits[k]:.3f}" for k in HIT_AT),
        f"MRR                {report.mrr:.3f}",
        f"article recall@5   {report.article_recall_at_5:.3f}",
        f"answer accuracy    {report.answer_accuracy:.3f}  (answered {report.answered_share:.3f})",
    ]
    if report.why_how_answer_accuracy is not None:
        lines.append(
            f"  why and how      {report.why_how_answer_accuracy:.3f}  answer accuracy on the"
            f" {report.why_how_questions} questions asking for a reason or a manner"
        )
    if report.unanswerable_balanced_accuracy is not None:
        lines.append(
            f"unanswerable       {report.unanswerable_balanced_accuracy:.3f}  balanced accuracy (abstained on"
            f" {report.abstained_when_unanswerable:.3f} of {report.unanswerable_questions} unanswerable;"
            f" answered {report.answered_share:.3f} of {report.questions} answerable)"
        )
    if report.abstention_accuracy is not None:
        lines.append(
            f"abstention         {report.abstention_accuracy:.3f}  (off-topic abstained {report.offtopic_abstained:.3f}"
            f" of {report.offtopic_questions}; answerable answered {report.answered_share:.3f})"
        )
    lines.append(
        f"calibration        ECE {report.ece:.3f}  (confidence against right answers, every question;"
        f" answers withheld below {report.min_confidence:.2f})"
    )
    lines += [
        f"  {b.low:.1f}-{b.high:.1f}          {b.answers:5d} answers, mean confidence {b.confidence:.3f},"
        f" right {b.right:.3f}"
        for b in report.reliability
    ]
    lines.append(f"latency p50 / p95  {report.latency_ms['p50']} / {report.latency_ms['p95']} ms")
    return "\n".join(lines)


def report_json(report: Report) -> str:
    """One JSON object."""
    return json.dumps(report.as_dict(), indent=2)
