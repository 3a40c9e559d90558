"""Filters by date and source, applied inside retrieval on both back ends, through every face; time in questions
and latest questions end to end, on the real model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from qa import QA
from qa.cli import cli
from qa.embedding import SentenceTransformerEmbedder
from qa.mcp.server import create_mcp_server
from qa.records import Answer, Article, Feed, Filters
from qa.server.app import create_app
from qa.server.openai_chat import ChatMessage, ChatRequest, QAOptions, ask_answer
from qa.settings import Settings

both_back_ends = pytest.mark.parametrize("backend", ["faiss", "postgres"], indirect=True)

START = date(2024, 1, 1)
CENSUS_DAYS = 120  # one census story a day from START, alternating between two sites
NARROW_DAY = date(2024, 2, 15)  # a day with one census story and six on another subject: a narrow filter
QUESTION = "How many otters did the harbour census count?"


def census(day: int) -> Article:
    when = START + timedelta(days=day)
    site = "wire.example" if day % 2 else "daily.example"
    count = 40 + day
    return Article(
        id=f"census-{day:03d}",
        title=f"Harbour otter census, {when:%d %B}",
        text=f"The harbour otter census counted {count} otters on {when:%d %B %Y}. Volunteers walked the whole"
        f" shore at low tide and counted {count} otters, the census team said.",
        url=f"https://{site}/otters/{day}",
        published=when.isoformat(),
        source=site,
    )


def baking(i: int) -> Article:
    return Article(
        id=f"bakery-{i}",
        title=f"Village bakery news {i}",
        text=f"The village bakery sold {100 + i} loaves of rye bread on market day. The baker opens at dawn.",
        published=NARROW_DAY.isoformat(),
        source="bakery.example",
    )


UNDATED = [
    Article(id="undated-1", title="Otter census, undated", text="The harbour otter census counted 12 otters."),
    Article(
        id="undated-2",
        title="Otter census, vague date",
        text="The harbour otter census counted 13 otters at the start of the season.",
        published="Spring 2024",
    ),
]


@pytest.fixture
def dated_qa(qa: QA) -> Iterator[QA]:
    """120 dated census stories from two sites, six bakery stories on one day, two undated census stories."""
    qa.indexer.upsert([census(day) for day in range(CENSUS_DAYS)] + [baking(i) for i in range(6)] + UNDATED)
    yield qa
    qa.close()


def matches(filters: Filters, published: str | None, source: str | None) -> bool:
    day = date.fromisoformat(published[:10]) if published and published[:4].isdigit() else None
    if (filters.since or filters.until) and day is None:
        return False
    if filters.since and day is not None and day < filters.since:
        return False
    if filters.until and day is not None and day > filters.until:
        return False
    return not filters.source or source in filters.source


@both_back_ends
@pytest.mark.parametrize(
    "filters",
    [
        Filters(since=date(2024, 3, 1), until=date(2024, 3, 31)),
        Filters(until=date(2024, 1, 10)),
        Filters(since=date(2024, 4, 20)),
        Filters(source=["wire.example"]),
        Filters(since=date(2024, 2, 1), until=date(2024, 2, 29), source=["daily.example"]),
    ],
)
def test_filters_return_only_matching_articles_and_fill_top_k(dated_qa: QA, filters: Filters) -> None:
    hits = dated_qa.search(QUESTION, top_k=10, filters=filters)
    assert len(hits) == 10  # every filter here matches at least ten census stories
    assert all(matches(filters, h.published, h.source) for h in hits), [(h.published, h.source) for h in hits]
    answer = dated_qa.ask(QUESTION, top_k=5, filters=filters)
    assert not answer.abstained and answer.filters == filters
    assert all(matches(filters, c.published, c.source) for c in answer.citations)


@both_back_ends
def test_a_narrow_filter_still_returns_top_k_when_enough_articles_match(dated_qa: QA) -> None:
    """The six bakery stories are far from the question (not among the 50 best unfiltered passages); filtering
    inside retrieval still finds five of them, where dropping results afterwards would find none."""
    unfiltered = dated_qa.search(QUESTION, top_k=50)
    assert not any(h.article_id.startswith("bakery") for h in unfiltered)
    day = Filters(since=NARROW_DAY, until=NARROW_DAY)
    hits = dated_qa.search(QUESTION, top_k=5, filters=day)
    assert len(hits) == 5 and all(h.published == NARROW_DAY.isoformat() for h in hits)
    assert hits[0].article_id == "census-045"  # the day's own census story first, then bakery stories
    assert len(dated_qa.search(QUESTION, top_k=20, filters=day)) == 7  # all there are
    site = dated_qa.search(QUESTION, top_k=5, filters=Filters(source=["bakery.example"]))
    assert len(site) == 5 and {h.source for h in site} == {"bakery.example"}


@both_back_ends
def test_no_matching_article_means_no_result(dated_qa: QA) -> None:
    nothing = Filters(since=date(2030, 1, 1))
    assert dated_qa.search(QUESTION, filters=nothing) == []
    answer = dated_qa.ask(QUESTION, filters=nothing)
    assert answer.abstained and answer.citations == [] and answer.filters == nothing
    assert dated_qa.search(QUESTION, filters=Filters(source=["nowhere.example"])) == []


@both_back_ends
def test_articles_without_a_parsable_date_never_match_a_date_filter(dated_qa: QA) -> None:
    everything = Filters(since=date(1900, 1, 1), until=date(2100, 1, 1))
    filtered = {h.article_id for h in dated_qa.search("harbour otter census counted otters", 50, everything)}
    unfiltered = {h.article_id for h in dated_qa.search("harbour otter census counted otters", 50)}
    assert {"undated-1", "undated-2"} <= unfiltered
    assert not filtered & {"undated-1", "undated-2"}


@both_back_ends
def test_the_article_list_filters_by_date_and_source(dated_qa: QA) -> None:
    total, page = dated_qa.articles(0, 50, Filters(since=NARROW_DAY, until=NARROW_DAY, source=["bakery.example"]))
    assert total == 6 and {a.id for a in page} == {f"bakery-{i}" for i in range(6)}
    total, page = dated_qa.articles(0, 200, Filters(source=["wire.example"]))
    assert total == CENSUS_DAYS // 2 and all(a.source == "wire.example" for a in page)


@both_back_ends
def test_a_time_the_question_names_becomes_a_filter(dated_qa: QA) -> None:
    answer = dated_qa.ask("How many otters did the harbour census count in March 2024?")
    assert answer.filters == Filters(since=date(2024, 3, 1), until=date(2024, 3, 31))
    assert not answer.abstained and all(c.published and c.published.startswith("2024-03") for c in answer.citations)
    # "yesterday" is the day before the newest article (29 April 2024), not before today
    yesterday = dated_qa.ask("How many otters did the harbour census count yesterday?")
    assert yesterday.filters == Filters(since=date(2024, 4, 28), until=date(2024, 4, 28))
    assert yesterday.citations[0].article_id == "census-118"
    # explicit filters are narrowed by the question's own time, not replaced
    both = dated_qa.ask("How many otters were counted in March 2024?", filters=Filters(source=["wire.example"]))
    assert both.filters == Filters(since=date(2024, 3, 1), until=date(2024, 3, 31), source=["wire.example"])
    assert all(c.source == "wire.example" for c in both.citations)


@both_back_ends
def test_a_latest_question_cites_the_newest_relevant_story_and_says_its_date(dated_qa: QA) -> None:
    answer = dated_qa.ask("What is the latest count of the harbour otter census?")
    assert not answer.abstained
    assert answer.citations[0].published == "2024-04-29" and answer.citations[0].article_id == "census-119"
    assert answer.answer.startswith("As of 29 April 2024: ")
    dated_qa.recency = dated_qa.recency.__class__(enabled=False)
    plain = dated_qa.ask("What is the latest count of the harbour otter census?")
    assert not plain.answer.startswith("As of")


def test_the_faiss_hnsw_search_fills_top_k_under_a_narrow_filter(
    settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    """Past QA_FLAT_MAX_VECTORS matching passages the graph is walked with an IDSelector; a walk that comes
    back short is completed by an exact search."""
    hnsw = QA(settings.model_copy(update={"vector_index": "hnsw", "flat_max_vectors": 0}), embedder)
    hnsw.indexer.upsert([census(day) for day in range(CENSUS_DAYS)] + [baking(i) for i in range(6)])
    vectors = hnsw.backend.vectors()  # type: ignore[attr-defined]
    assert vectors.kind == "hnsw"
    hits = hnsw.search(QUESTION, top_k=5, filters=Filters(since=NARROW_DAY, until=NARROW_DAY))
    assert len(hits) == 5 and all(h.published == NARROW_DAY.isoformat() for h in hits)
    march = Filters(since=date(2024, 3, 1), until=date(2024, 3, 31))
    assert [h.article_id for h in hnsw.search(QUESTION, 10, march)] == [
        h.article_id for h in hnsw.search(QUESTION, 10, march)
    ]
    assert all(matches(march, h.published, h.source) for h in hnsw.search(QUESTION, 10, march))
    hnsw.close()


@both_back_ends
def test_filters_by_folder_and_by_feed(qa: QA, tmp_path: pytest.TempPathFactory) -> None:
    """A folder of files is named as GET /api/sources names it (from its corpus root, subfolders included); a
    feed by its URL."""
    from pathlib import Path

    root = Path(str(tmp_path)) / "corpus"
    for folder, n in (("business", 3), ("business/markets", 2), ("sport", 3)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / folder / f"{i}.md").write_text(f"# Otters {folder} {i}\n\nThe harbour otter census counted {i}.")
    local = QA(qa.settings.model_copy(update={"corpus_dir": root}), qa.embedder)
    local.ingest([root])
    names = {f.name for f in local.sources().folders}
    assert {"corpus/business", "corpus/business/markets", "corpus/sport"} <= names
    business = local.search("otter census", 20, Filters(source=["corpus/business"]))
    assert len(business) == 5 and all(h.article_id.startswith("business/") for h in business)
    markets = local.search("otter census", 20, Filters(source=["corpus/business/markets"]))
    assert {h.article_id for h in markets} == {"business/markets/0.md", "business/markets/1.md"}
    local.backend.save_feed(Feed(url="https://feeds.example/otters.xml", added="2024-01-01T00:00:00Z"))
    from qa.backends.base import FeedItem

    local.backend.save_feed_items(
        "https://feeds.example/otters.xml", [FeedItem("g1", None, "h", "sport/1.md"), FeedItem("g2", None, "h", None)]
    )
    feed = local.search("otter census", 20, Filters(source=["https://feeds.example/otters.xml"]))
    assert [h.article_id for h in feed] == ["sport/1.md"]
    both = local.search("otter census", 20, Filters(source=["corpus/sport", "https://feeds.example/otters.xml"]))
    assert len(both) == 3
    local.close()


@both_back_ends
def test_every_face_takes_the_filters_and_refuses_bad_dates_naming_the_field(
    dated_qa: QA, tmp_path: pytest.TempPathFactory
) -> None:
    client = TestClient(create_app(dated_qa), raise_server_exceptions=False)
    day = {"since": NARROW_DAY.isoformat(), "until": f"{NARROW_DAY}T23:59:59Z", "source": "bakery.example"}
    asked = client.post("/api/ask", json={"question": "How many loaves of rye bread were sold?", **day})
    assert asked.status_code == 200, asked.text
    assert asked.json()["filters"] == {"since": "2024-02-15", "until": "2024-02-15", "source": ["bakery.example"]}
    assert {c["source"] for c in asked.json()["citations"]} == {"bakery.example"}
    searched = client.get("/api/search", params={"q": QUESTION, "top_k": 5, **day})
    assert searched.status_code == 200 and len(searched.json()["results"]) == 5
    assert {r["source"] for r in searched.json()["results"]} == {"bakery.example"}
    listed = client.get("/api/articles", params={"source": ["wire.example", "bakery.example"], "limit": 200})
    assert listed.json()["total"] == CENSUS_DAYS // 2 + 6

    for response, field in (
        (client.post("/api/ask", json={"question": QUESTION, "since": "2024-13-01"}), "since"),
        (client.get("/api/search", params={"q": QUESTION, "until": "soon"}), "until"),
        (client.get("/api/articles", params={"since": "1st of May"}), "since"),
        (client.post("/api/ask", json={"question": QUESTION, "source": [f"s{i}" for i in range(21)]}), "source"),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["error"].startswith(f"{field}: "), response.json()

    completions = ChatRequest(
        messages=[ChatMessage(role="user", content=QUESTION)],
        qa=QAOptions(since="2024-03-01", until="2024-03-31", source="wire.example"),
    )
    answer = ask_answer(dated_qa, completions)
    assert answer.filters == Filters(since=date(2024, 3, 1), until=date(2024, 3, 31), source=["wire.example"])
    bad = client.post(
        "/v1/chat/completions",
        json={"model": "qa", "messages": [{"role": "user", "content": QUESTION}], "qa": {"until": "2024-02-30"}},
    )
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("until: ")

    async def tools() -> tuple[Answer, str]:
        async with Client(create_mcp_server(dated_qa)) as mcp:
            ok = await mcp.call_tool("ask", {"question": QUESTION, "since": "2024-04-01", "source": ["wire.example"]})
            refused = await mcp.call_tool("search", {"query": QUESTION, "since": "April"})
            assert refused.is_error
            return Answer.model_validate(ok.structured_content), refused.content[0].text  # type: ignore[union-attr]

    tool_answer, refusal = asyncio.run(tools())
    assert tool_answer.filters == Filters(since=date(2024, 4, 1), source=["wire.example"])
    assert all(c.source == "wire.example" and (c.published or "") >= "2024-04-01" for c in tool_answer.citations)
    assert "since: 'April' is not a date" in refusal

    runner = CliRunner()
    env = {"QA_INDEX_DIR": str(dated_qa.settings.index_dir)}
    if dated_qa.settings.backend == "postgres":
        env |= {"QA_BACKEND": "postgres", "QA_DATABASE_URL": dated_qa.settings.database_url or ""}
    result = runner.invoke(
        cli, ["search", QUESTION, "--since", "2024-02-15", "--until", "2024-02-15", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.count('"published": "2024-02-15"') == 5
    result = runner.invoke(cli, ["ask", QUESTION, "--until", "2024-06-31"], env=env)
    assert result.exit_code == 1 and "until: '2024-06-31' is not a date" in result.output
