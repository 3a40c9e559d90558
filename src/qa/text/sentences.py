"""Sentence boundaries with character offsets, for chunking and for picking answer sentences."""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt gen col lt sgt capt gov sen rep rev hon pres vs etc inc ltd co corp no nos
    fig vol jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s u.k u.n a.m p.m approx est
    """.split()
)
# End punctuation, optional closing quotes/brackets, white space, then something that can open a sentence.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_LINE = re.compile(r"[^\n]+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence in the text; a line break always ends a sentence."""
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        cursor = line.start()
        for boundary in _BOUNDARY.finditer(text, line.start(), line.end()):
            if _is_abbreviation(text, cursor, boundary.start()):
                continue
            _append_stripped(spans, text, cursor, boundary.end())
            cursor = boundary.end()
        _append_stripped(spans, text, cursor, line.end())
    return spans


def _is_abbreviation(text: str, sentence_start: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > sentence_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lstrip("\"'“‘([").lower()
    # Single initials ("J. Smith"), dotted abbreviations ("a.k.a.") and listed ones ("Dr.") end no sentence.
    return (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS or ("." in word and len(word) <= 8)


def _append_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))
