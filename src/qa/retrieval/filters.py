"""Filters from what a client sends: dates (YYYY-MM-DD, or a full ISO date and time) and source names.

Every face (API, CLI, MCP, the OpenAI endpoint, the page) reads its since/until/source through `read_filters`, so
they accept the same text and refuse it with the same one-line message naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from qa.errors import InvalidFilter
from qa.records import Filters
from qa.text.unicode import is_unicode

MAX_SOURCES = 20  # source names one request may give
MAX_SOURCE_CHARS = 2_000  # the longest source name (a feed URL)


def parse_date(field: str, text: str | date | None) -> date | None:
    """A date from YYYY-MM-DD or an ISO 8601 date and time (its date part); None for nothing."""
    if text is None or isinstance(text, date):
        return text.date() if isinstance(text, datetime) else text
    value = text.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value).date()
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise InvalidFilter(field, f"{shown!r} is not a date: use YYYY-MM-DD (e.g. 1987-10-19)") from None


def source_names(given: str | Sequence[str] | None) -> list[str]:
    """Source names, trimmed and without repeats; InvalidFilter past MAX_SOURCES or MAX_SOURCE_CHARS."""
    if given is None:
        return []
    names = [given] if isinstance(given, str) else list(given)
    kept: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidFilter("source", "each source must be a string")
        name = name.strip()
        if len(name) > MAX_SOURCE_CHARS:
            raise InvalidFilter("source", f"a source name is {len(name)} characters; the limit is {MAX_SOURCE_CHARS}")
        if not is_unicode(name):  # a lone surrogate cannot reach SQLite; any other text is a name, known or not
            raise InvalidFilter("source", "a source name is not valid Unicode")
        if name and name not in kept:
            kept.append(name)
    if len(kept) > MAX_SOURCES:
        raise InvalidFilter("source", f"{len(kept)} sources; the limit is {MAX_SOURCES}")
    return kept


def read_filters(
    since: str | date | None = None, until: str | date | None = None, source: str | Sequence[str] | None = None
) -> Filters | None:
    """The filters a client asked for, or None when it asked for none; InvalidFilter names the field at fault."""
    filters = Filters(since=parse_date("since", since), until=parse_date("until", until), source=source_names(source))
    return filters if filters.active() else None


def intersect(first: Filters | None, second: Filters | None) -> Filters | None:
    """Articles both filters allow: the later `since`, the earlier `until`; sources from the first that has any."""
    if first is None or second is None:
        return first or second
    since = max((d for d in (first.since, second.since) if d is not None), default=None)
    until = min((d for d in (first.until, second.until) if d is not None), default=None)
    return Filters(since=since, until=until, source=first.source or second.source)


def describe(filters: Filters) -> str:
    """The filters in a few words: "published 1987-06-01 to 1987-06-30, from Reuters"."""
    parts = []
    if filters.since and filters.until:
        parts.append(
            f"published on {filters.since}"
            if filters.since == filters.until
            else f"published {filters.since} to {filters.until}"
        )
    elif filters.since:
        parts.append(f"published on or after {filters.since}")
    elif filters.until:
        parts.append(f"published on or before {filters.until}")
    if filters.source:
        parts.append("from " + " or ".join(filters.source))
    return ", ".join(parts) or "no filter"
