"""The client's side of a conversation: the turns it keeps and sends back with each question."""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.records import Answer, Turn

_MARKER = re.compile(r"\[(\d+)\]")


def turn_of(answer: Answer) -> Turn:
    """The turn an answer adds to a conversation: its question, its text, and the articles its sentences cite."""
    cited = {int(n) for n in _MARKER.findall(answer.answer)}
    article_ids = [c.article_id for c in answer.citations if c.n in cited]
    return Turn(question=answer.question, answer=answer.answer, article_ids=list(dict.fromkeys(article_ids)))


def trimmed(turns: Sequence[Turn], max_turns: int, max_chars: int) -> list[Turn]:
    """The most recent turns that fit the server's limits (QA_MAX_HISTORY_TURNS, QA_MAX_HISTORY_CHARS)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns[-max_turns:] if max_turns else []):
        size = len(turn.question) + len(turn.answer) + sum(len(a) for a in turn.article_ids)
        if used + size > max_chars:
            break
        kept.append(turn)
        used += size
    return kept[::-1]
