"""The MCP server over a QA: tools ask, search, get_article and list_articles, and articles as resources.

Each tool returns the same fields as the HTTP API as structured content (its output schema is the API's
model), plus a short text rendering with [n] markers for the assistant's model to read. None of them writes.
The same server runs over stdio (`qa mcp`) and, mounted by qa.server, over streamable HTTP at /mcp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from qa.errors import ArticleNotFound, QAError
from qa.mcp import rendering
from qa.records import Answer, ArticlePage, ArticleText, Filters, SearchResults, Turn
from qa.retrieval.filters import MAX_SOURCES, read_filters
from qa.service import QA

MAX_ARTICLE_CHARS = 20_000  # the most article text one get_article call returns; call again from `end` for more
MAX_PAGE = 200  # articles per list_articles call, as GET /api/articles
ARTICLE_URI = "qa://articles/{+article_id}"  # `+`: ids may hold slashes (a URL slug, a path in the corpus)

INSTRUCTIONS = """\
Answers and passages from a collection of news articles. Every answer quotes the articles and marks each
sentence with [n], the citation it came from; `confidence` (0..1) is the calibrated probability that the
answer is right (0.7 and above: likely; lower: say it is unsure). When the articles do not answer, `abstained`
is true: say so rather than answering from elsewhere. Use `ask` for questions, `search` for passages about a topic,
`get_article` to read around a citation (its `start`/`end` are character offsets into the article), and
`list_articles` to see what is indexed, newest first."""

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# A function told about each HTTP tool call that takes from the rate limit: None to go ahead, else why not.
RateCheck = Callable[[Request], str | None]


def ask_answer(qa: QA, question: str, history: Sequence[Turn], top_k: int, filters: Filters | None = None) -> Answer:
    """The one place the ask tool's arguments become a QA.ask call (history within the /api/ask limits)."""
    return qa.ask(question, top_k, history=list(history), filters=filters)


Since = Annotated[str | None, Field(description="Only articles published on or after this date (YYYY-MM-DD).")]
Until = Annotated[
    str | None, Field(description="Only articles published on or before this date (YYYY-MM-DD, inclusive).")
]
Source = Annotated[
    list[str] | None,
    Field(
        description="Only articles from these sources (any of them): sites, folders or feed URLs, as the article"
        " list and GET /api/sources name them (e.g. a site's host).",
        max_length=MAX_SOURCES,
    ),
]


def create_mcp_server(qa: QA, rate_check: RateCheck | None = None) -> MCPServer:
    """The MCP server answering from `qa`; `rate_check` limits ask and search calls that come over HTTP."""
    # WARNING: the SDK configures the root logger when nothing has (a uvicorn worker); INFO would log every library.
    server = MCPServer("qa", version="0.1.0", instructions=INSTRUCTIONS, log_level="WARNING")

    def take_token(ctx: Context) -> None:
        request = ctx.request_context.request  # the HTTP request; None over stdio
        if rate_check is not None and isinstance(request, Request):
            refusal = rate_check(request)
            if refusal:
                raise ToolError(refusal)

    @server.tool(annotations=READ_ONLY)
    def ask(
        question: Annotated[str, Field(description="The question, in plain words.")],
        ctx: Context,
        history: Annotated[
            list[Turn] | None,
            Field(description="Earlier turns of this conversation, oldest first, when the question follows up."),
        ] = None,
        top_k: Annotated[int, Field(description="Passages to consider, 1 to QA_MAX_TOP_K.", ge=1)] = 5,
        since: Since = None,
        until: Until = None,
        source: Source = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Answer a question from the articles: quoted sentences marked [n], each citation's article id, title,
        url, date, passage and highlighted span; `abstained` when the articles do not answer it. since, until
        and source limit the articles; a time the question names ("in June 1987") narrows them, and a question
        about the latest state ("latest", "now") prefers newer articles and names the date."""
        take_token(ctx)
        with _tool_errors():
            answer = ask_answer(qa, question, history or [], top_k, read_filters(since, until, source))
        return _result(rendering.answer_text(answer), answer)

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Annotated[str, Field(description="What to look for.")],
        ctx: Context,
        top_k: Annotated[int, Field(description="Passages to return, 1 to QA_MAX_TOP_K.", ge=1)] = 5,
        since: Since = None,
        until: Until = None,
        source: Source = None,
    ) -> Annotated[CallToolResult, SearchResults]:
        """The passages most relevant to a query, best first, each with its article and highlighted sentence;
        since, until and source limit the articles (top_k still come back when that many passages match)."""
        take_token(ctx)
        with _tool_errors():
            hits = qa.search(query, top_k, filters=read_filters(since, until, source))
        return _result(rendering.hits_text(hits), SearchResults(results=hits))

    @server.tool(annotations=READ_ONLY)
    def get_article(
        article_id: Annotated[str, Field(description="The article's id, as citations and list_articles give it.")],
        start: Annotated[int, Field(description="First character to return.", ge=0)] = 0,
        end: Annotated[int | None, Field(description="Character to stop before; default: the end.", ge=0)] = None,
    ) -> Annotated[CallToolResult, ArticleText]:
        """An article's title, date, link and text, or the characters start..end of it (a citation's `start` and
        `end` select its passage); at most 20,000 characters a call, `next_start` says where the rest begins."""
        if end is not None and end <= start:
            raise ToolError(f"end ({end}) must be after start ({start})")
        limit = MAX_ARTICLE_CHARS if end is None else min(end - start, MAX_ARTICLE_CHARS)
        with _tool_errors():
            page = qa.article_text(article_id, start, limit)
        return _result(rendering.article_text(page), page)

    @server.tool(annotations=READ_ONLY)
    def list_articles(
        offset: Annotated[int, Field(description="Articles to skip.", ge=0, le=10**9)] = 0,
        limit: Annotated[int, Field(description="Articles to return, 1 to 200.", ge=1, le=MAX_PAGE)] = 20,
        since: Since = None,
        until: Until = None,
        source: Source = None,
    ) -> Annotated[CallToolResult, ArticlePage]:
        """The indexed articles, newest first: id, title, url, date, author and passage count, and the total;
        since, until and source limit them."""
        with _tool_errors():
            total, page = qa.articles(offset, limit, read_filters(since, until, source))
        listing = ArticlePage(total=total, offset=offset, limit=limit, articles=page)
        return _result(rendering.articles_text(total, offset, page), listing)

    @server.resource(
        ARTICLE_URI,
        name="article",
        description="An article's title, date, link and full text.",
        mime_type="text/plain",
        security=ResourceSecurity(exempt_params={"article_id"}),  # an id is looked up, never a file path
    )
    def article_resource(article_id: str) -> str:
        try:
            page = qa.article_text(article_id)  # up to QA_MAX_TEXT_CHARS, as GET /api/articles/{id}
        except ArticleNotFound as e:
            raise ResourceNotFoundError(str(e)) from e
        return rendering.article_text(page)

    return server


def _result(text: str, data: BaseModel) -> CallToolResult:
    content: list[Any] = [TextContent(type="text", text=text)]
    return CallToolResult(content=content, structured_content=data.model_dump(mode="json"))


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Domain errors (an over-long question, an unknown article) become tool errors the model can read."""
    try:
        yield
    except QAError as e:
        raise ToolError(str(e)) from e


def run_stdio(qa: QA) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    create_mcp_server(qa).run("stdio")
