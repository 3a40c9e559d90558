"""The MCP server, driven by the official `mcp` SDK's client over both transports: stdio (`python -m qa mcp` as
a subprocess, as a desktop assistant launches it) and streamable HTTP (/mcp of a real server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent, TextResourceContents

from fixtures import SAMPLE_ID
from qa import QA
from qa.mcp.server import MAX_ARTICLE_CHARS
from qa.records import Answer, ArticlePage, ArticleText, SearchResults
from qa.server.app import create_app
from serving import serving
from test_history import FIRST, FOLLOW_UP, HOI_AN, PLOVDIV

T = TypeVar("T")
QUESTION = "What does Nurly Zhol mean?"
TOOLS = {"ask", "search", "get_article", "list_articles"}


def run(session: Callable[[Client], Awaitable[T]], server: Any) -> T:
    """Connect a client to `server` (a URL, or stdio parameters), run `session` with it, disconnect."""

    async def main() -> T:
        async with Client(server, read_timeout_seconds=120) as client:
            return await session(client)

    return asyncio.run(main())


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def every_tool(client: Client) -> dict[str, Any]:
    """Call each tool and read a resource; returns what came back."""
    found: dict[str, Any] = {"tools": {t.name: t for t in (await client.list_tools()).tools}}
    found["ask"] = await client.call_tool("ask", {"question": QUESTION})
    found["follow_up"] = await client.call_tool(
        "ask",
        {"question": QUESTION, "top_k": 3, "history": [{"question": "Who met in Astana?", "answer": "Xi. [1]"}]},
    )
    found["search"] = await client.call_tool("search", {"query": "Shanghai Cooperation Organization", "top_k": 2})
    found["list"] = await client.call_tool("list_articles", {"limit": 5})
    found["range"] = await client.call_tool("get_article", {"article_id": SAMPLE_ID, "start": 10, "end": 60})
    found["unknown"] = await client.call_tool("get_article", {"article_id": "no-such-article"})
    found["too_long"] = await client.call_tool("ask", {"question": "why " * 1000})
    found["resource"] = await client.read_resource(f"qa://articles/{SAMPLE_ID}")
    found["templates"] = await client.list_resource_templates()
    try:
        await client.read_resource("qa://articles/no-such-article")
    except MCPError as e:
        found["missing_resource"] = e
    return found


def check_every_tool(found: dict[str, Any], qa: QA) -> None:
    """What both transports must give: the HTTP API's fields as structured content, and readable text."""
    assert set(found["tools"]) == TOOLS
    assert all(t.annotations.read_only_hint for t in found["tools"].values())
    assert found["tools"]["ask"].output_schema["title"] == "Answer"

    answer = Answer.model_validate(found["ask"].structured_content)
    assert not found["ask"].is_error and not answer.abstained
    assert answer.model_dump() == qa.ask(QUESTION).model_dump()  # the same answer as the API gives
    assert answer.citations[0].article_id == SAMPLE_ID
    assert "lighted path" in text_of(found["ask"]) and "[1]" in text_of(found["ask"])
    assert f"id={SAMPLE_ID}" in text_of(found["ask"])
    assert Answer.model_validate(found["follow_up"].structured_content).question == QUESTION

    hits = SearchResults.model_validate(found["search"].structured_content).results
    assert len(hits) == 2 and text_of(found["search"]).startswith("[1] ")

    page = ArticlePage.model_validate(found["list"].structured_content)
    assert page.total == 1 and page.articles[0].id == SAMPLE_ID and page.limit == 5

    article = qa.article(SAMPLE_ID)
    shown = ArticleText.model_validate(found["range"].structured_content)  # as GET /api/articles/{id}
    assert (shown.text_start, shown.text_length, shown.next_start) == (10, len(article.text), 60)
    assert shown.text == article.text[10:60]

    assert found["unknown"].is_error and "no article with id 'no-such-article'" in text_of(found["unknown"])
    assert found["too_long"].is_error and "the limit is 2000" in text_of(found["too_long"])

    contents = found["resource"].contents[0]
    assert isinstance(contents, TextResourceContents) and article.text in contents.text
    assert [t.uri_template for t in found["templates"].resource_templates] == ["qa://articles/{+article_id}"]
    assert isinstance(found.get("missing_resource"), MCPError)


@pytest.fixture
def index_copy(_sample_index: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "mcp-index"
    shutil.copytree(_sample_index, folder)
    return folder


def test_over_stdio_as_a_desktop_assistant_runs_it(index_copy: Path, sample_qa: QA) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "qa", "mcp"], env={"QA_INDEX_DIR": str(index_copy)}
    )
    check_every_tool(run(every_tool, params), sample_qa)


def test_qa_mcp_fails_in_one_line_when_the_index_cannot_be_opened() -> None:
    environment = {**os.environ, "QA_BACKEND": "postgres"}  # and no QA_DATABASE_URL
    result = subprocess.run(
        [sys.executable, "-m", "qa", "mcp"],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and "QA_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # stdout belongs to the protocol: nothing else may go there


@pytest.fixture
def base_url(sample_qa: QA) -> Iterator[str]:
    with serving(create_app(sample_qa)) as url:
        yield url


def test_over_streamable_http_at_slash_mcp(base_url: str, sample_qa: QA) -> None:
    check_every_tool(run(every_tool, f"{base_url}/mcp"), sample_qa)


def test_mcp_calls_take_from_the_same_rate_limit_as_the_api(sample_qa: QA) -> None:
    limited = QA(sample_qa.settings.model_copy(update={"rate_limit": 0.01, "rate_burst": 2}), sample_qa.embedder)
    with serving(create_app(limited)) as url:
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=60).status_code == 200

        async def session(client: Client) -> list[Any]:
            calls = [
                await client.call_tool("search", {"query": "oil"}),
                await client.call_tool("ask", {"question": QUESTION}),
            ]
            calls.append(await client.call_tool("list_articles", {}))  # reading the list takes no token, as in /api
            return calls

        search, ask, listing = run(session, f"{url}/mcp")
        assert not search.is_error
        assert ask.is_error and "too many requests" in text_of(ask)
        assert not listing.is_error
        assert httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=60).status_code == 429


def test_ask_follows_up_on_the_history_it_is_given(sample_qa: QA) -> None:
    from qa.mcp.server import create_mcp_server

    for article in (PLOVDIV, HOI_AN):
        sample_qa.add(article)
    turn = {"question": FIRST, "answer": "Every May. [1]", "article_ids": [PLOVDIV.id]}

    async def session(client: Client) -> list[Any]:
        return [
            await client.call_tool("ask", {"question": FOLLOW_UP}),
            await client.call_tool("ask", {"question": FOLLOW_UP, "history": [turn]}),
            await client.call_tool("ask", {"question": FOLLOW_UP, "history": [turn] * 100}),
        ]

    alone, follow_up, too_long = run(session, create_mcp_server(sample_qa))  # in-process: the mapping
    assert Answer.model_validate(alone.structured_content).citations[0].article_id == HOI_AN.id
    answer = Answer.model_validate(follow_up.structured_content)
    assert answer.citations[0].article_id == PLOVDIV.id and "40,000" in answer.answer
    assert too_long.is_error and "QA_MAX_HISTORY_TURNS" in text_of(too_long)  # the limits of /api/ask


def test_browsers_from_other_origins_are_refused(sample_qa: QA) -> None:
    allowed = "https://assistant.example"
    changed = QA(sample_qa.settings.model_copy(update={"cors_origins": [allowed]}), sample_qa.embedder)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    with serving(create_app(changed)) as url:
        refused = httpx.post(f"{url}/mcp", json=ping, headers={**headers, "Origin": "http://evil.example"})
        assert refused.status_code == 403 and "QA_CORS_ORIGINS" in refused.json()["error"]
        for allowed_call in ({**headers, "Origin": allowed}, headers):  # an allowed origin; no origin: not a browser
            answered = httpx.post(f"{url}/mcp", json=ping, headers=allowed_call)
            assert answered.status_code == 200 and answered.json()["result"] == {}


def test_long_articles_come_in_pieces(qa: QA) -> None:
    from qa.records import Article

    qa.add(Article(id="long", title="Long", text="Otters hold hands. " * 2000))

    async def session(client: Client) -> list[Any]:
        first = await client.call_tool("get_article", {"article_id": "long"})
        rest = await client.call_tool("get_article", {"article_id": "long", "start": MAX_ARTICLE_CHARS})
        backwards = await client.call_tool("get_article", {"article_id": "long", "start": 50, "end": 10})
        return [first, rest, backwards]

    from qa.mcp.server import create_mcp_server

    first, rest, backwards = run(session, create_mcp_server(qa))  # in-process: the plumbing of ranges
    text = qa.article("long").text
    head = ArticleText.model_validate(first.structured_content)
    tail = ArticleText.model_validate(rest.structured_content)
    assert (head.text_start, len(head.text), head.next_start) == (0, MAX_ARTICLE_CHARS, MAX_ARTICLE_CHARS)
    assert f"call get_article with start={MAX_ARTICLE_CHARS}" in text_of(first)
    assert (tail.text_start, tail.next_start) == (MAX_ARTICLE_CHARS, None) and head.text + tail.text == text
    assert backwards.is_error and "must be after start" in text_of(backwards)
