"""Split an article into sentence-aligned passages that fit the model's window, with their offsets."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.records import Article, Passage
from qa.text.sentences import sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Word pieces in each text, without the model's special tokens."""

SPECIAL_TOKENS = 2  # [CLS] and [SEP]


@dataclass(frozen=True)
class ChunkingPolicy:
    """How passages are cut: their largest size in word pieces and the sentences shared by neighbours."""

    max_tokens: int
    overlap: int

    def label(self) -> str:
        """The form recorded in the index, so an index chunked differently is noticed."""
        return f"sentences, max {self.max_tokens} word pieces, overlap {self.overlap} sentence(s)"


def passages_for(article: Article, policy: ChunkingPolicy, count_tokens: TokenCounter) -> list[Passage]:
    """The article's passages; each slices the article text exactly, and none exceeds the window."""
    text = article.text
    units = _units(text, policy.max_tokens - SPECIAL_TOKENS, count_tokens)
    budget = policy.max_tokens - SPECIAL_TOKENS
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        last, used = first, units[first].tokens
        while last + 1 < len(units) and used + units[last + 1].tokens <= budget:
            # Prefer to end at a paragraph break once the passage is half full.
            if units[last + 1].opens_paragraph and used >= budget // 2:
                break
            last += 1
            used += units[last].tokens
        spans.append((units[first].start, units[last].end))
        if last + 1 >= len(units):
            break
        first = max(first + 1, last + 1 - policy.overlap)
        # Overlap only when the shared sentences leave room for new ones.
        while first <= last and sum(u.tokens for u in units[first : last + 2]) > budget:
            first += 1
    return [
        Passage(article_id=article.id, ordinal=i, start=start, end=end, text=text[start:end])
        for i, (start, end) in enumerate(spans)
    ]


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    opens_paragraph: bool


def _units(text: str, budget: int, count_tokens: TokenCounter) -> list[_Unit]:
    """Sentences, with any sentence longer than the budget cut into word windows that fit."""
    spans = sentence_spans(text)
    counts = count_tokens([text[s:e] for s, e in spans])
    units: list[_Unit] = []
    previous_end = 0
    for (start, end), tokens in zip(spans, counts, strict=True):
        opens = "\n\n" in text[previous_end:start] or not units
        previous_end = end
        if tokens <= budget:
            units.append(_Unit(start, end, tokens, opens))
            continue
        for i, (ws, we, wt) in enumerate(_word_windows(text, start, end, budget, count_tokens)):
            units.append(_Unit(ws, we, wt, opens and i == 0))
    return units


def _word_windows(
    text: str, start: int, end: int, budget: int, count_tokens: TokenCounter
) -> list[tuple[int, int, int]]:
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
    counts = count_tokens([text[start + s : start + e] for s, e in words])
    windows: list[tuple[int, int, int]] = []
    i = 0
    while i < len(words):
        j, used = i, counts[i]
        while j + 1 < len(words) and used + counts[j + 1] <= budget:
            j += 1
            used += counts[j]
        if used > budget:  # a single "word" longer than the window: cut it by characters
            windows.extend(_character_windows(text, start + words[i][0], start + words[i][1], budget, count_tokens))
        else:
            windows.append((start + words[i][0], start + words[j][1], used))
        i = j + 1
    return windows


def _character_windows(
    text: str, start: int, end: int, budget: int, count_tokens: TokenCounter
) -> list[tuple[int, int, int]]:
    windows = []
    while start < end:
        size = min(end - start, budget)
        while size > 1 and count_tokens([text[start : start + size]])[0] > budget:
            size //= 2
        windows.append((start, start + size, count_tokens([text[start : start + size]])[0]))
        start += size
    return windows
