"""Split an article into sentence-aligned passages that fit the model's window, with their offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qa.records import Article, Passage
from qa.text.sentences import sentence_spans


class Tokenizer(Protocol):
    """The model's word pieces: how many each text has, and where they sit (no special tokens either way)."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces in each text."""
        ...

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of each word piece of each text."""
        ...


SPECIAL_TOKENS = 2  # [CLS] and [SEP]
CHARS_PER_TOKEN = 10  # a passage's hard cap in characters, per word piece of the window (~4 in English prose)


@dataclass(frozen=True)
class ChunkingPolicy:
    """How passages are cut: their largest size in word pieces and the sentences shared by neighbours."""

    max_tokens: int
    overlap: int

    @property
    def max_chars(self) -> int:
        """The most characters a passage holds, whatever its word pieces: a 5 MB "word" is one [UNK] piece."""
        return self.max_tokens * CHARS_PER_TOKEN

    def label(self) -> str:
        """The form recorded in the index, so an index chunked differently is noticed."""
        return f"sentences, max {self.max_tokens} word pieces, overlap {self.overlap} sentence(s)"


def passages_for(article: Article, policy: ChunkingPolicy, tokenizer: Tokenizer) -> list[Passage]:
    """The article's passages; each slices the article text exactly, and none exceeds the window or the cap.

    Linear in the text: sentences are found in one pass, a sentence longer than the character cap is cut at the
    last white space before it (or at the cap), and only pieces still over the window are tokenized again.
    """
    text = article.text
    budget, max_chars = policy.max_tokens - SPECIAL_TOKENS, policy.max_chars
    units = _units(text, budget, max_chars, tokenizer)
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        last, used = first, units[first].tokens
        while last + 1 < len(units) and _fits(units, first, last + 1, used + units[last + 1].tokens, budget, max_chars):
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
        while first <= last and not _fits(
            units, first, last + 1, sum(u.tokens for u in units[first : last + 2]), budget, max_chars
        ):
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


def _fits(units: Sequence[_Unit], first: int, last: int, tokens: int, budget: int, max_chars: int) -> bool:
    return tokens <= budget and units[last].end - units[first].start <= max_chars


def _units(text: str, budget: int, max_chars: int, tokenizer: Tokenizer) -> list[_Unit]:
    """Sentences, with any sentence over the character cap or the window cut into pieces that fit both."""
    pieces: list[tuple[int, int, bool]] = []
    previous_end = 0
    for start, end in sentence_spans(text):
        opens = not pieces or "\n\n" in text[previous_end:start]
        previous_end = end
        for i, (s, e) in enumerate(_character_pieces(text, start, end, max_chars)):
            pieces.append((s, e, opens and i == 0))
    counts = tokenizer.count_tokens([text[s:e] for s, e, _ in pieces])
    too_long = [k for k, tokens in enumerate(counts) if tokens > budget]
    spans = dict(
        zip(too_long, tokenizer.token_spans([text[pieces[k][0] : pieces[k][1]] for k in too_long]), strict=True)
    )
    units: list[_Unit] = []
    for k, ((start, end, opens), tokens) in enumerate(zip(pieces, counts, strict=True)):
        if tokens <= budget:
            units.append(_Unit(start, end, tokens, opens))
            continue
        for i, (ws, we, wt) in enumerate(_token_windows(text, start, spans[k], budget, tokenizer)):
            units.append(_Unit(ws, we, wt, opens and i == 0))
    return units


def _character_pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """text[start:end] in pieces of at most max_chars, cut at the last white space when one is near the cap."""
    pieces = []
    while end - start > max_chars:
        window = text[start : start + max_chars + 1]
        cut = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
        cut = cut if cut > max_chars // 2 else max_chars
        pieces.append(_stripped(text, start, start + cut))
        start += cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append((start, end))
    return [p for p in pieces if p[0] < p[1]]


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _token_windows(
    text: str, start: int, spans: Sequence[tuple[int, int]], budget: int, tokenizer: Tokenizer
) -> list[tuple[int, int, int]]:
    """A piece of text starting at `start`, with these word pieces, cut into windows of at most `budget` of them,
    at word starts where possible."""
    windows: list[tuple[int, int, int]] = []
    recount: list[int] = []  # windows cut inside a word, which may tokenize differently on their own
    i = 0
    while i < len(spans):
        j = min(i + budget, len(spans))
        if j < len(spans):  # end before a word piece that starts a word, if there is one in the window
            k = j
            while k > i + 1 and spans[k][0] == spans[k - 1][1]:
                k -= 1
            j = k if k > i + 1 else j
        joined = (i > 0 and spans[i][0] == spans[i - 1][1]) or (j < len(spans) and spans[j][0] == spans[j - 1][1])
        if joined:
            recount.append(len(windows))
        windows.append((start + spans[i][0], start + spans[j - 1][1], j - i))
        i = j
    counts = tokenizer.count_tokens([text[windows[w][0] : windows[w][1]] for w in recount])
    for w, tokens in zip(recount, counts, strict=True):
        windows[w] = (windows[w][0], windows[w][1], tokens)
    fitted: list[tuple[int, int, int]] = []
    for s, e, tokens in windows:
        if tokens <= budget or e - s <= 1:
            fitted.append((s, e, tokens))
        else:  # a window cut inside a word grew when counted alone: halve it
            middle = s + (e - s) // 2
            for a, b in ((s, middle), (middle, e)):
                [halves] = tokenizer.token_spans([text[a:b]])
                fitted += _token_windows(text, a, halves, budget, tokenizer)
    return fitted
