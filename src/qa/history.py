"""A conversation's earlier turns, as a follow-up question sends them: limits and the follow-up's search text.

The conversation engine (qa.conversation) replaces `followup_query` with real query rewriting; until then a
follow-up is searched together with the question before it, the classic baseline for conversational retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.errors import InvalidQuestion
from qa.records import Turn
from qa.text.unicode import is_unicode


def history_chars(turns: Sequence[Turn]) -> int:
    """The size of a history as QA_MAX_HISTORY_CHARS counts it: questions, answers and article ids."""
    return sum(len(t.question) + len(t.answer) + sum(len(i) for i in t.article_ids) for t in turns)


def check_history(turns: Sequence[Turn], max_turns: int, max_chars: int) -> list[Turn]:
    """The turns, when they are within the limits and valid text; else InvalidQuestion naming `history`."""
    if len(turns) > max_turns:
        raise InvalidQuestion(f"history: {len(turns)} turns; the limit is {max_turns} (QA_MAX_HISTORY_TURNS)")
    size = history_chars(turns)
    if size > max_chars:
        raise InvalidQuestion(f"history: {size} characters; the limit is {max_chars} (QA_MAX_HISTORY_CHARS)")
    for i, turn in enumerate(turns):
        if not all(is_unicode(text) for text in (turn.question, turn.answer, *turn.article_ids)):
            raise InvalidQuestion(f"history.{i}: not valid Unicode text (it holds a lone surrogate)")
    return list(turns)


def followup_query(question: str, history: Sequence[Turn], max_chars: int) -> str:
    """What to search for: the question, after the previous question when there is one (cut to max_chars)."""
    previous = " ".join(history[-1].question.split()) if history else ""
    if not previous:
        return question
    return f"{previous[: max(0, max_chars - len(question) - 1)]} {question}".strip()
