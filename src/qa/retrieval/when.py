"""Time in a question: the period it names ("in March 1987", "last month", "since June"), and whether it asks
for the latest state of things ("latest", "now", "so far").

A collection of articles is an archive: its "today" is the day of its newest article, not the clock's, so
relative times ("yesterday", "last year", "in March" without a year) count from the newest article's date.
A named period becomes a date filter and leaves the search text, but only when it meets the dates the articles
were published on: "What did the company earn in 1986?" over stories from 1987 is about 1986's earnings, not a
search among 1986's articles, and questions over undated articles (an encyclopedia) are never filtered.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from qa.records import Filters

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"

# A point in time after a preposition, most specific first: (kind, pattern).
_POINTS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(rf"(?P<y>{_YEAR})-(?P<m>\d\d)-(?P<d>\d\d)\b")),
    ("day", re.compile(rf"(?:the\s+)?(?P<d>{_DAY})\s+(?:of\s+)?(?P<mn>{_MONTH}),?\s+(?P<y>{_YEAR})\b", re.I)),
    ("day", re.compile(rf"(?P<mn>{_MONTH})\s+(?P<d>{_DAY}),?\s+(?P<y>{_YEAR})\b", re.I)),
    ("day", re.compile(rf"(?:the\s+)?(?P<d>{_DAY})\s+(?:of\s+)?(?P<mn>{_MONTH})(?![\w-])", re.I)),
    ("day", re.compile(rf"(?P<mn>{_MONTH})\s+(?P<d>{_DAY})\b(?!\s*(?:pct|percent|%|\w))", re.I)),
    ("month", re.compile(rf"(?P<mn>{_MONTH}),?\s+(?P<y>{_YEAR})\b", re.I)),
    ("month", re.compile(rf"(?P<mn>{_MONTH})(?![\w-])", re.I)),
    ("year", re.compile(rf"(?P<y>{_YEAR})\b(?![-/]\d)")),
]
_PREPOSITION = re.compile(
    r"\b(?P<prep>in|during|on|since|after|before|until|till|through|as\s+of|between|from)\s+", re.IGNORECASE
)
_RANGE_JOINER = re.compile(r"\s*(?:and|to|until|till|through|-|–)\s*", re.IGNORECASE)
_RELATIVE = re.compile(
    r"\b(?:(?P<the>(?:(?:in|during|over)\s+)?the\s+(?:past|last)\s+)|(?P<last>(?:(?:in|during)\s+)?last\s+))"
    r"(?P<unit>week|month|year)\b|\b(?P<day>yesterday|today)\b",
    re.IGNORECASE,
)
_LATEST = re.compile(
    r"\b(?:latest|newest|most\s+recent(?:ly)?|recently|now|nowadays|currently|at\s+present|at\s+the\s+moment"
    r"|these\s+days|this\s+(?:week|month|year)|so\s+far|still|up\s+to\s+date)\b",
    re.IGNORECASE,
)

Newest = Callable[[], tuple[date, date] | None]
"""Gives the oldest and newest publication dates of the articles (None when none is dated); asked only when a
question names a time."""


@dataclass(frozen=True)
class Period:
    """Publication dates from `since` to `until`, inclusive; None is open."""

    since: date | None
    until: date | None

    def meets(self, oldest: date, newest: date) -> bool:
        """True when some day from oldest to newest lies in it."""
        return (self.since is None or self.since <= newest) and (self.until is None or self.until >= oldest)


@dataclass(frozen=True)
class TimeReading:
    """What a question says about time: its text less the expressions that became `period`, and the cue."""

    text: str
    period: Filters | None = None  # since/until from the question's own words
    expressions: tuple[str, ...] = ()  # the words they were read from
    latest: bool = False  # it asks for the latest state ("latest", "now", "so far", "as of ...")


def asks_latest(question: str) -> bool:
    """True when the question asks for the latest or current state of things."""
    return _LATEST.search(question) is not None


def read_time(question: str, dates: Newest, parse_periods: bool = True) -> TimeReading:
    """The periods a question names (those that meet the articles' dates) as a filter, and its latest cue.

    `dates` is called at most once, and only when the question names a time.
    """
    latest = asks_latest(question)
    if not parse_periods:
        return TimeReading(question, latest=latest)
    found = _expressions(question)
    if not found:
        return TimeReading(question, latest=latest)
    known = dates()
    if known is None:
        return TimeReading(question, latest=latest)
    oldest, newest = known
    spans: list[tuple[int, int]] = []
    since: date | None = None
    until: date | None = None
    for start, end, reading in found:
        period = reading(newest)
        if period is None or not period.meets(oldest, newest):
            continue
        spans.append((start, end))
        latest = latest or question[start:end].lower().startswith("as of")
        if period.since is not None:
            since = period.since if since is None else max(since, period.since)
        if period.until is not None:
            until = period.until if until is None else min(until, period.until)
    if not spans:
        return TimeReading(question, latest=latest)
    return TimeReading(
        text=_without(question, spans),
        period=Filters(since=since, until=until),
        expressions=tuple(question[s:e] for s, e in spans),
        latest=latest,
    )


Reading = Callable[[date], Period | None]


def _expressions(question: str) -> list[tuple[int, int, Reading]]:
    """(start, end, how to read it given the newest date) of each time expression, left to right."""
    found: list[tuple[int, int, Reading]] = []
    taken = 0
    for match in _PREPOSITION.finditer(question):
        if match.start() < taken:
            continue
        prep = " ".join(match.group("prep").lower().split())
        point = _point_at(question, match.end())
        if point is None:
            continue
        end, first = point
        if prep in ("between", "from"):
            joiner = _RANGE_JOINER.match(question, end)
            second = _point_at(question, joiner.end()) if joiner else None
            if second is None:
                if prep == "between":
                    continue
                found.append((match.start(), end, _opened(first, "since")))
            else:
                found.append((match.start(), second[0], _between(first, second[1])))
                end = second[0]
        else:
            found.append((match.start(), end, _opened(first, prep)))
        taken = end
    for match in _RELATIVE.finditer(question):
        if not any(s <= match.start() < e for s, e, _ in found):
            found.append((match.start(), match.end(), _relative(match)))
    return sorted(found, key=lambda f: f[0])


Point = Callable[[date], tuple[date, date] | None]


def _point_at(text: str, at: int) -> tuple[int, Point] | None:
    """The point in time that starts at `at`, if any: where it ends and its first and last days."""
    for kind, pattern in _POINTS:
        match = pattern.match(text, at)
        if match is None:
            continue
        fields = match.groupdict()
        month_name = (fields.get("mn") or "").rstrip(".")
        if month_name.lower() == "may" and not month_name.startswith("M"):
            continue  # "may" in lower case is the verb
        point = _point(kind, fields, month_name)
        if point is not None:
            return match.end(), point
    return None


def _point(kind: str, fields: dict[str, str | None], month_name: str) -> Point | None:
    y, m, d = fields.get("y"), fields.get("m"), fields.get("d")
    year = int(y) if y else None
    month = _MONTHS.get(month_name.lower()) if month_name else (int(m) if m else None)
    day = int(re.sub(r"\D", "", d)) if d else None
    if kind == "year" and year is not None:
        return lambda _newest: (date(year, 1, 1), date(year, 12, 31))
    if month is None or not 1 <= month <= 12:
        return None
    if kind == "month":
        return lambda newest: _month(year if year is not None else _latest_year(newest, month, 1), month)
    if day is None:
        return None

    def one_day(newest: date) -> tuple[date, date] | None:
        wanted = year if year is not None else _latest_year(newest, month, day)
        try:
            when = date(wanted, month, day)
        except ValueError:
            return None
        return when, when

    return one_day


def _latest_year(newest: date, month: int, day: int) -> int:
    """The year of the latest such month and day up to the newest date."""
    return newest.year if (month, day) <= (newest.month, newest.day) else newest.year - 1


def _month(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _opened(point: Point, prep: str) -> Reading:
    """A point read with its preposition: in/on/during it, since it, after it, before it, until it."""

    def reading(newest: date) -> Period | None:
        days = point(newest)
        if days is None:
            return None
        first, last = days
        if prep == "since":
            return Period(first, None)
        if prep == "after":
            return Period(last + timedelta(days=1), None)
        if prep == "before":
            return Period(None, first - timedelta(days=1))
        if prep in ("until", "till", "through", "as of"):
            return Period(None, last)
        return Period(first, last)

    return reading


def _between(first: Point, second: Point) -> Reading:
    def reading(newest: date) -> Period | None:
        a, b = first(newest), second(newest)
        return None if a is None or b is None else Period(min(a[0], b[0]), max(a[1], b[1]))

    return reading


def _relative(match: re.Match[str]) -> Reading:
    """yesterday/today, last week/month/year (the calendar one before the newest date's), the past week/month/year
    (the days up to the newest date)."""
    day, unit = (match.group("day") or "").lower(), (match.group("unit") or "").lower()
    trailing = match.group("the") is not None

    def reading(newest: date) -> Period | None:
        if day == "today":
            return Period(newest, newest)
        if day == "yesterday":
            return Period(newest - timedelta(days=1), newest - timedelta(days=1))
        if trailing:
            back = {"week": timedelta(days=6), "month": timedelta(days=30), "year": timedelta(days=364)}[unit]
            return Period(newest - back, newest)
        if unit == "week":
            monday = newest - timedelta(days=newest.weekday())
            return Period(monday - timedelta(days=7), monday - timedelta(days=1))
        if unit == "month":
            last_month = newest.replace(day=1) - timedelta(days=1)
            return Period(*_month(last_month.year, last_month.month))
        return Period(date(newest.year - 1, 1, 1), date(newest.year - 1, 12, 31))

    return reading


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with these spans cut out and the punctuation around them tidied."""
    kept, at = [], 0
    for start, end in sorted(spans):
        kept.append(text[at:start])
        at = max(at, end)
    kept.append(text[at:])
    out = " ".join("".join(kept).split())
    out = re.sub(r"\s+([?.!,;:])", r"\1", out)
    out = re.sub(r",(?=[?.!])|^[\s,;:]+", "", out)
    return out.strip() or text
