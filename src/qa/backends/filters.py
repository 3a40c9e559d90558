"""Filters on articles as SQL predicates, shared by both back ends: publication dates and sources.

A date filter compares the stored ISO text: `published >= since` and `published < the day after until`, so a
stored date and time ("1987-10-19T08:00") counts as its day, and the published index serves the range. Text
that is no ISO date ("Spring 2020", "2020") never matches one.

A source name matches an article when it is
- its `source` (a site's host such as `example.org` for fetched articles, an upload's or a file's own source
  field such as `Reuters`),
- a folder its file was read from, as GET /api/sources names folders (`corpus/business`; a folder outside the
  corpus roots by its own name): the file's path holds `/<name>/`, so subfolders count too,
- or a followed feed's URL it was found in.
Several names match any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from qa.backends.base import ISO_DATE_POSTGRES, ISO_DATE_SQLITE
from qa.records import Filters

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Predicate:
    """A condition on the articles table (aliased `a`) with its named parameters."""

    sql: str
    params: dict[str, Any]


def _bounds(filters: Filters) -> tuple[str | None, str | None]:
    """The ISO text range [since, day after until) the published column is compared with."""
    since = filters.since.isoformat() if filters.since is not None else None
    until = None
    if filters.until is not None:
        try:
            until = (filters.until + timedelta(days=1)).isoformat()
        except OverflowError:  # 9999-12-31: every date is before it
            until = "9999-12-31T99"
    return since, until


def article_predicate(filters: Filters | None, dialect: Dialect) -> Predicate | None:
    """The SQL condition on articles `a` for these filters (None when they limit nothing)."""
    if filters is None or not filters.active():
        return None
    parts: list[str] = []
    params: dict[str, Any] = {}
    since, until = _bounds(filters)
    # PostgreSQL compares text by the database's collation; "C" is byte order, as the index on it.
    published = 'a.published COLLATE "C"' if dialect == "postgres" else "a.published"
    if since is not None or until is not None:
        parts.append("a." + (ISO_DATE_POSTGRES if dialect == "postgres" else ISO_DATE_SQLITE))
    if since is not None:
        parts.append(f"{published} >= {_mark('since', dialect)}")
        params["since"] = since
    if until is not None:
        parts.append(f"{published} < {_mark('until', dialect)}")
        params["until"] = until
    if filters.source:
        source, source_params = _source_condition(filters.source, dialect)
        parts.append(source)
        params.update(source_params)
    return Predicate(" AND ".join(parts), params)


def _mark(name: str, dialect: Dialect) -> str:
    return f"%({name})s" if dialect == "postgres" else f":{name}"


def folder_needle(name: str) -> str:
    """What a file's path holds when it lies in the folder a source name calls it ("/corpus/business/")."""
    return "/" + name.strip("/") + "/"


def _source_condition(names: list[str], dialect: Dialect) -> tuple[str, dict[str, Any]]:
    folders = [folder_needle(n) for n in names if n.strip("/") and "://" not in n]
    feeds = [n for n in names if "://" in n]
    if dialect == "postgres":
        alternatives = ["a.source = ANY(%(sites)s)"]
        params: dict[str, Any] = {"sites": names}
        if folders:
            alternatives.append("EXISTS (SELECT 1 FROM unnest(%(folders)s::text[]) f WHERE strpos(a.file, f) > 0)")
            params["folders"] = folders
        if feeds:
            alternatives.append("a.id IN (SELECT i.article_id FROM feed_items i WHERE i.feed_url = ANY(%(feeds)s))")
            params["feeds"] = feeds
        return "(" + " OR ".join(alternatives) + ")", params
    params = {f"site{i}": n for i, n in enumerate(names)}
    alternatives = [f"a.source IN ({', '.join(':' + k for k in params)})"]
    for i, needle in enumerate(folders):
        alternatives.append(f"instr(a.file, :folder{i}) > 0")
        params[f"folder{i}"] = needle
    if feeds:
        marks = []
        for i, feed in enumerate(feeds):
            marks.append(f":feed{i}")
            params[f"feed{i}"] = feed
        alternatives.append(f"a.id IN (SELECT i.article_id FROM feed_items i WHERE i.feed_url IN ({', '.join(marks)}))")
    return "(" + " OR ".join(alternatives) + ")", params
