"""Time in questions (qa.retrieval.when): the periods a question names, relative to the newest article, and
latest-state cues; and the filters clients send (qa.retrieval.filters)."""

from __future__ import annotations

from datetime import date

import pytest

from qa.errors import InvalidFilter
from qa.records import Filters
from qa.retrieval.filters import MAX_SOURCES, describe, intersect, read_filters
from qa.retrieval.when import asks_latest, read_time

ARCHIVE = (date(1987, 4, 8), date(1987, 10, 20))  # the oldest and newest article, as in reuters-wire


def dates() -> tuple[date, date]:
    return ARCHIVE


@pytest.mark.parametrize(
    ("question", "text", "since", "until"),
    [
        ("What happened to oil prices in June 1987?", "What happened to oil prices?", "1987-06-01", "1987-06-30"),
        ("In June 1987, what did OPEC decide?", "what did OPEC decide?", "1987-06-01", "1987-06-30"),
        ("What happened on 19 October 1987?", "What happened?", "1987-10-19", "1987-10-19"),
        ("What happened on October 19, 1987?", "What happened?", "1987-10-19", "1987-10-19"),
        ("What happened on 1987-06-01?", "What happened?", "1987-06-01", "1987-06-01"),
        ("What did the dollar do in June?", "What did the dollar do?", "1987-06-01", "1987-06-30"),
        ("What happened in October?", "What happened?", "1987-10-01", "1987-10-31"),
        ("What happened in 1987?", "What happened?", "1987-01-01", "1987-12-31"),
        ("What did OPEC do since June?", "What did OPEC do?", "1987-06-01", None),
        ("What was said after June 1987?", "What was said?", "1987-07-01", None),
        ("What was said before October 1987?", "What was said?", None, "1987-09-30"),
        ("What happened between April and June 1987?", "What happened?", "1987-04-01", "1987-06-30"),
        ("What happened yesterday?", "What happened?", "1987-10-19", "1987-10-19"),
        ("What happened today?", "What happened?", "1987-10-20", "1987-10-20"),
        ("Prices in the past week?", "Prices?", "1987-10-14", "1987-10-20"),
        ("What happened in May?", "What happened?", "1987-05-01", "1987-05-31"),
    ],
)
def test_a_named_time_becomes_a_filter_and_leaves_the_search_text(
    question: str, text: str, since: str | None, until: str | None
) -> None:
    reading = read_time(question, dates)
    assert reading.text == text
    assert reading.period is not None
    assert (str(reading.period.since) if reading.period.since else None) == since
    assert (str(reading.period.until) if reading.period.until else None) == until


def test_relative_times_count_from_the_newest_article_not_the_clock() -> None:
    """The archive's "last month" is the month before its newest story (September 1987), whatever today is."""
    reading = read_time("What did OPEC do last month?", dates)
    assert reading.period == Filters(since=date(1987, 9, 1), until=date(1987, 9, 30))
    assert read_time("What happened last year?", lambda: (date(1980, 1, 1), date(1987, 10, 20))).period == Filters(
        since=date(1986, 1, 1), until=date(1986, 12, 31)
    )
    monday = read_time("What happened last week?", dates).period
    assert monday == Filters(since=date(1987, 10, 12), until=date(1987, 10, 18))


@pytest.mark.parametrize(
    "question",
    [
        "What did the company earn in 1986?",  # before every article: 1986's earnings, not 1986's articles
        "What happened in March?",  # the latest March (1987) is before the first article
        "Who may win?",  # "may" the verb
        "What is the 1987-06-01 filing about?",  # no preposition: part of the question
        "How many copies were sold?",
    ],
)
def test_times_outside_the_articles_dates_stay_words(question: str) -> None:
    reading = read_time(question, dates)
    assert reading.period is None and reading.text == question


def test_undated_articles_never_turn_a_time_into_a_filter() -> None:
    """An encyclopedia's "in 1850" is about 1850, and its articles have no dates to filter on."""
    asked: list[bool] = []

    def none() -> None:
        asked.append(True)

    reading = read_time("What was built in 1850?", none)
    assert reading.period is None and reading.text == "What was built in 1850?" and asked == [True]


def test_dates_are_only_looked_up_when_a_question_names_a_time() -> None:
    def fail() -> tuple[date, date]:
        raise AssertionError("no time named: the dates were not needed")

    assert read_time("What is the latest on crude oil?", fail).latest


@pytest.mark.parametrize(
    ("question", "latest"),
    [
        ("What is the latest on crude oil prices?", True),
        ("What is the most recent figure for unemployment?", True),
        ("Who is currently in charge of OPEC?", True),
        ("What are oil prices now?", True),
        ("How much wheat has been sold so far this year?", True),
        ("Is the Gulf still closed to shipping?", True),
        ("What did OPEC decide in June 1987?", False),
        ("What is the current account deficit?", False),
        ("Who founded the company?", False),
    ],
)
def test_latest_cues(question: str, latest: bool) -> None:
    assert asks_latest(question) is latest


def test_as_of_a_date_asks_for_the_latest_state_up_to_it() -> None:
    reading = read_time("What was the price of gold as of June 1987?", dates)
    assert reading.latest and reading.period == Filters(until=date(1987, 6, 30))
    assert reading.text == "What was the price of gold?"


def test_client_filters_read_dates_and_sources() -> None:
    assert read_filters() is None
    assert read_filters("", None, []) is None
    filters = read_filters("1987-06-01", "1987-06-30T23:59:00Z", ["Reuters", " Reuters ", "corpus/business"])
    assert filters == Filters(since=date(1987, 6, 1), until=date(1987, 6, 30), source=["Reuters", "corpus/business"])
    assert describe(filters) == "published 1987-06-01 to 1987-06-30, from Reuters or corpus/business"


@pytest.mark.parametrize(
    ("since", "until", "source", "field"),
    [
        ("1987-13-01", None, None, "since"),
        (None, "yesterday", None, "until"),
        (None, None, ["x"] * 0 + [f"s{i}" for i in range(MAX_SOURCES + 1)], "source"),
        (None, None, "a" * 2001, "source"),
        (None, None, "bad\ud800name", "source"),  # not valid Unicode text (JSON can spell a lone surrogate)
    ],
)
def test_bad_filters_name_their_field(since: str | None, until: str | None, source: object, field: str) -> None:
    with pytest.raises(InvalidFilter) as raised:
        read_filters(since, until, source)  # type: ignore[arg-type]
    assert raised.value.field == field and str(raised.value).startswith(f"{field}: ")


def test_a_source_name_is_any_text_and_one_no_article_has_matches_nothing() -> None:
    assert read_filters(None, None, "odd\x00name") == Filters(source=["odd\x00name"])


def test_a_questions_time_narrows_the_filters_asked_for() -> None:
    asked = Filters(since=date(1987, 5, 1), source=["Reuters"])
    named = Filters(since=date(1987, 6, 1), until=date(1987, 6, 30))
    assert intersect(asked, named) == Filters(since=date(1987, 6, 1), until=date(1987, 6, 30), source=["Reuters"])
    assert intersect(None, named) == named and intersect(asked, None) == asked
