"""Turn a scraped plain-text page into a title, byline, date and body free of site chrome."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = (
    rf"(?:(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?)"
)
_NAME_WORD = r"(?:[A-Z][\w.'’-]*|de|da|van|von|der|den|la|le|al|bin|ibn)"
_AUTHOR = rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,5}}?(?:\s+(?:and|&)\s+{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,5}}?)?"
_BYLINE = re.compile(
    rf"^(?:By|BY|by)\s+(?P<author>{_AUTHOR})\s*(?:[,|·•–—-]\s*)?"
    rf"(?:(?P<date>{_DATE})(?:,?\s+\d{{1,2}}:\d{{2}}(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s+[A-Z]{{2,5}})?)?)?\s*$"
)
_DATE_LINE = re.compile(rf"^(?:Published:?\s*)?(?P<date>{_DATE})(?:,?\s+\d{{1,2}}:\d{{2}}.*)?$")

# Lines that belong to the site, not the story.
_CHROME = [
    re.compile(r"^(?:last\s+)?updated?(?:\s+on)?\s*:?\s*.{0,60}\d.{0,20}$", re.IGNORECASE),
    re.compile(r"^[\w .&'’-]{1,40}\s+logo$", re.IGNORECASE),
    re.compile(r"^(?:none|null|undefined|nan|n/a)$", re.IGNORECASE),
    re.compile(
        r"^(?:advertisement|share(?: this(?: article| story)?)?|subscribe\b.{0,60}|follow us\b.{0,60}"
        r"|skip to (?:main )?content|read more|related (?:articles|stories)|print|email)$",
        re.IGNORECASE,
    ),
    # Photo credits: "Photo: Reuters", "Image credit: AP", "(Getty Images)".
    re.compile(r"^(?:photo|image|picture|credit|photograph)s?(?:\s+credit)?\s*[:/].{0,120}$", re.IGNORECASE),
    re.compile(r"^\(?(?:photo|image)s?\s+(?:by|courtesy of)\b.{0,120}$", re.IGNORECASE),
    # A caption ending in "/ Agency": text without closing punctuation, then a slash and a short credit.
    re.compile(r"^[^\n]{1,300}?\s/\s*[A-Z][\w.&'’ -]{1,40}$"),
]


@dataclass(frozen=True)
class CleanedText:
    """The parts of a scraped page that belong to the article."""

    title: str
    body: str
    author: str | None = None
    published: str | None = None


def parse_date(text: str) -> str | None:
    """An ISO 8601 date (YYYY-MM-DD) for the common ways news sites write one, or None."""
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.strip()).replace(",", " ").replace(".", " ")
    text = re.sub(r"\s+", " ", text).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    for fmt in ("%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(text.replace("Sept ", "Sep "), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def is_chrome(line: str) -> bool:
    """True for a line of site furniture: update stamps, logos, empty captions, photo credits."""
    stripped = line.strip()
    if stripped.endswith((".", "!", "?", '"', "”", ":")) and not stripped.lower().startswith("photo"):
        return any(p.match(stripped) for p in _CHROME[:2])
    return any(p.match(stripped) for p in _CHROME)


def clean_scraped_text(raw: str, title: str | None = None) -> CleanedText:
    """Split a scraped page into title, author, date and the body without chrome.

    With `title` given (from front matter, say), the first line is not taken as the title.
    """
    lines = [line.rstrip() for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    kept = [line for line in lines if not (line.strip() and is_chrome(line))]
    author, published = None, None
    # The header zone: the title and, just after it, a byline or a date line.
    index = _first_nonblank(kept, 0)
    if title is None:
        title = ""
        if index is not None and len(kept[index]) <= 300:
            title = kept[index].strip()
            kept[index] = ""
    for _ in range(3):
        nxt = _first_nonblank(kept, 0)
        if nxt is None:
            break
        line = kept[nxt].strip()
        if byline := _BYLINE.match(line):
            author = byline["author"].strip()
            published = parse_date(byline["date"]) if byline["date"] else published
        elif dated := _DATE_LINE.match(line):
            published = parse_date(dated["date"])
        else:
            break
        kept[nxt] = ""
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return CleanedText(title=title, body=body, author=author, published=published)


def _first_nonblank(lines: list[str], start: int) -> int | None:
    for i in range(start, len(lines)):
        if lines[i].strip():
            return i
    return None
