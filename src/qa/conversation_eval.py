"""`qa eval` on conversation sets: follow-up questions asked with the gold history of the turns before them.

A conversation set is a folder with articles.jsonl and conversations.jsonl (id, article_id, turns: [{turn,
question, answer, span_start, span_end, answerable}]), the format of CoQA. Every turn is asked with the gold
questions and answers of the turns before it as its history (the CoQA protocol), and judged on:

- article@1: the article of the answer's first citation is the conversation's (an abstention is a miss);
- support@1: that citation's highlighted sentence overlaps the gold rationale span;
- answer in highlight: the gold free-form answer (not yes/no/unknown) appears in the answer's sentences.

Each is reported for first turns and for later turns (2+), in three modes: `history` (the engine),
`alone` (each question on its own) and `paste` (a naive client pasting the last two turns' questions and
answers in front of the question). A topic-change probe asks, after half of each conversation, the first
question of the next conversation in the file, and counts how often its article is found.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from qa.errors import QAError
from qa.progress import Progress
from qa.records import Answer, Turn
from qa.service import QA

MODES = ("history", "alone", "paste")
MODE_NAMES = {"history": "with history", "alone": "each turn alone", "paste": "naive paste (last 2 turns)"}
PASTED_TURNS = 2
NO_TEXT_ANSWERS = frozenset({"yes", "no", "unknown"})


class GoldTurn(BaseModel):
    """One turn of a gold conversation: the question, the free-form answer and its rationale span."""

    turn: int
    question: str
    answer: str = ""
    span_start: int | None = None
    span_end: int | None = None
    answerable: bool = True


class Conversation(BaseModel):
    """A conversation about one article."""

    id: str
    article_id: str
    turns: list[GoldTurn]


@dataclass
class TurnOutcome:
    """What one mode did with one turn."""

    turn: int  # 1-based position in its conversation
    article_right: bool
    supported: bool | None  # None when the turn has no gold span
    answer_in_highlight: bool | None  # None for yes/no/unknown answers and unanswerable turns
    abstained: bool
    seconds: float


@dataclass
class ConversationReport:
    """Metrics per mode and per first/later turns; `as_dict` is what --json prints."""

    dataset: str
    conversations: int
    turns: int
    passages: int
    modes: dict[str, dict[str, dict[str, float | int | None]]] = field(default_factory=dict)
    topic_change: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return dict(self.__dict__)


def is_conversation_set(folder: Path) -> bool:
    """Whether a dataset folder holds conversations rather than single questions."""
    return (folder / "conversations.jsonl").exists()


def load_conversations(folder: Path) -> list[Conversation]:
    """The conversations of a dataset folder."""
    path = folder / "conversations.jsonl"
    if not path.exists():
        raise QAError(f"{folder}: no conversations.jsonl")
    with path.open(encoding="utf-8") as f:
        try:
            return [Conversation.model_validate_json(line) for line in f if line.strip()]
        except ValueError as e:
            raise QAError(f"{path}: not a conversation set ({str(e).splitlines()[0]})") from e


def select(conversations: Sequence[Conversation], part: tuple[int, int] | None) -> list[Conversation]:
    """Conversations whose position in the file is I mod N (an even/odd split by story with 0/2 and 1/2)."""
    if part is None:
        return list(conversations)
    i, n = part
    return [c for position, c in enumerate(conversations) if position % n == i]


def gold_history(conversation: Conversation, upto: int, article_ids: bool = False) -> list[Turn]:
    """The turns before turn `upto` (0-based) as a client would send them: question and answer text."""
    ids = [conversation.article_id] if article_ids else []
    return [Turn(question=t.question, answer=t.answer, article_ids=ids) for t in conversation.turns[:upto]]


def ask(qa: QA, question: str, history: Sequence[Turn], mode: str) -> Answer:
    """Ask one question the way `mode` does: with the history, alone, or with the last turns pasted in front."""
    if mode == "alone" or not history:
        return qa.ask(question)
    if mode == "paste":
        pasted = " ".join(f"{t.question} {t.answer}" for t in history[-PASTED_TURNS:])
        limit = qa.settings.max_question_chars
        return qa.ask(f"{pasted} {question}"[-limit:])
    return qa.ask(question, history=history[-qa.settings.max_history_turns :] if qa.settings.max_history_turns else [])


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def judge(conversation: Conversation, position: int, answer: Answer, seconds: float) -> TurnOutcome:
    """Score one turn's answer against the gold rationale span and answer."""
    gold = conversation.turns[position]
    first = answer.citations[0] if answer.citations and not answer.abstained else None
    article_right = first is not None and first.article_id == conversation.article_id
    supported: bool | None = None
    if gold.answerable and gold.span_start is not None and gold.span_end is not None:
        supported = (
            first is not None
            and article_right
            and first.highlight[0] < gold.span_end
            and gold.span_start < first.highlight[1]
        )
    in_highlight: bool | None = None
    wanted = _words(gold.answer)
    if gold.answerable and wanted and wanted not in NO_TEXT_ANSWERS:
        said = _words(re.sub(r"\[\d+\]", " ", answer.answer))
        in_highlight = not answer.abstained and article_right and f" {wanted} " in f" {said} "
    return TurnOutcome(position + 1, article_right, supported, in_highlight, answer.abstained, seconds)


def _share(values: Sequence[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def summarise(outcomes: Sequence[TurnOutcome]) -> dict[str, float | int | None]:
    """article@1, support@1, answer in highlight and the answered share of some turns."""
    return {
        "turns": len(outcomes),
        "article@1": _share([o.article_right for o in outcomes]),
        "support@1": _share([o.supported for o in outcomes]),
        "answer_in_highlight": _share([o.answer_in_highlight for o in outcomes]),
        "answered": _share([not o.abstained for o in outcomes]),
    }


def run(
    qa: QA,
    conversations: Sequence[Conversation],
    modes: Sequence[str] = MODES,
    progress: Progress | None = None,
    dataset: str = "",
    article_ids: bool = False,
    everyone: Sequence[Conversation] | None = None,
) -> ConversationReport:
    """Ask every turn of every conversation in each mode; `everyone` (default: the same) feeds the topic probe."""
    everyone = list(everyone or conversations)
    turns = sum(len(c.turns) for c in conversations)
    if progress is not None:
        progress.total = (turns + len(conversations)) * len(modes)
    report = ConversationReport(dataset, len(conversations), turns, qa.counts()[1])
    for mode in modes:
        outcomes: list[TurnOutcome] = []
        for conversation in conversations:
            for position, gold in enumerate(conversation.turns):
                history = gold_history(conversation, position, article_ids)
                started = time.perf_counter()
                answer = ask(qa, gold.question, history, mode)
                outcomes.append(judge(conversation, position, answer, time.perf_counter() - started))
                if progress is not None:
                    progress.update(1)
        report.modes[mode] = {
            "first": summarise([o for o in outcomes if o.turn == 1]),
            "later": summarise([o for o in outcomes if o.turn > 1]),
            "all": summarise(outcomes),
        }
        report.latency_ms[mode] = _latency([o for o in outcomes if o.turn > 1])
        report.topic_change[mode] = _topic_change(qa, conversations, everyone, mode, article_ids, progress)
    return report


def _latency(outcomes: Sequence[TurnOutcome]) -> dict[str, float]:
    times = sorted(o.seconds * 1000 for o in outcomes) or [0.0]
    return {"p50": round(statistics.median(times), 1), "p95": round(times[int(0.95 * (len(times) - 1))], 1)}


def _topic_change(
    qa: QA,
    conversations: Sequence[Conversation],
    everyone: Sequence[Conversation],
    mode: str,
    article_ids: bool,
    progress: Progress | None,
) -> float:
    """article@1 of the next story's first question, asked after half of each conversation."""
    positions = {c.id: i for i, c in enumerate(everyone)}
    right = 0
    for conversation in conversations:
        following = everyone[(positions.get(conversation.id, -1) + 1) % len(everyone)]
        if following.article_id == conversation.article_id:
            following = everyone[(positions.get(conversation.id, -1) + 2) % len(everyone)]
        history = gold_history(conversation, len(conversation.turns) // 2, article_ids)
        answer = ask(qa, following.turns[0].question, history, mode)
        right += judge(following, 0, answer, 0.0).article_right
        if progress is not None:
            progress.update(1)
    return round(right / len(conversations), 4) if conversations else 0.0


def format_table(report: ConversationReport) -> str:
    """A readable summary: one row per mode, first turns and later turns side by side."""

    def cell(value: float | int | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    lines = [
        f"dataset      {report.dataset}",
        f"asked        {report.conversations} conversations, {report.turns} turns (passages indexed {report.passages})",
        "",
        f"{'':28} {'article@1':>15} {'support@1':>15} {'answer in hl.':>15} {'answered':>15}  later p50 ms",
        f"{'mode':28} {'first':>7} {'later':>7} {'first':>7} {'later':>7} {'first':>7} {'later':>7}"
        f" {'first':>7} {'later':>7}",
    ]
    for mode, parts in report.modes.items():
        first, later = parts["first"], parts["later"]
        cells = [
            cell(part[key])
            for key in ("article@1", "support@1", "answer_in_highlight", "answered")
            for part in (first, later)
        ]
        lines.append(
            f"{MODE_NAMES[mode]:28} " + " ".join(f"{c:>7}" for c in cells) + f"  {report.latency_ms[mode]['p50']}"
        )
    lines.append("")
    lines.append(
        "topic change article@1 (the next story's first question after half a conversation): "
        + ", ".join(f"{MODE_NAMES[m]} {v:.3f}" for m, v in report.topic_change.items())
    )
    lines.append("article@1: the article of the answer's first citation (an abstention is a miss); support@1: its")
    lines.append("highlight overlaps the gold rationale; first = turn 1, later = turns 2+.")
    return "\n".join(lines)


def report_json(report: ConversationReport) -> str:
    """One JSON object."""
    return json.dumps(report.as_dict(), indent=2)
