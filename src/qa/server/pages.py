"""The HTML pages: the chat page at /, the article list at /articles and the article view that citations open."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qa.answering.compose import bounded_window
from qa.records import Sources
from qa.retrieval.filters import MAX_SOURCE_CHARS, describe, read_filters
from qa.server.assets import templates
from qa.service import QA
from qa.suggestions import example_questions

PAGE_SIZE = 25  # articles per page of /articles
MAX_PAGE = 10**7  # keeps the offset a small SQLite integer
EXAMPLES = 3  # example questions on an empty chat
EXAMPLE_TITLES = 12  # newest titles they are drawn from (some titles are unusable)
router = APIRouter(include_in_schema=False)


def safe_url(url: str | None) -> str | None:
    """The URL when it is http(s), else None: article URLs are untrusted and never become other links."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def render_error(request: Request, status: int, message: str) -> Response:
    """An error page with the status and a one-line message."""
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message}, status_code=status)


def article_path(article_id: str) -> str:
    """The article view's path for an id (ids may hold slashes, spaces, ? and #); render.js builds the same."""
    return "/articles/" + quote(article_id, safe="/")


templates.env.filters["article_path"] = article_path


@router.get("/", response_class=HTMLResponse)
def chat(request: Request) -> Response:
    """The conversation page; questions go to /api/ask from web/static/chat.js, limits from the settings."""
    qa: QA = request.app.state.qa
    articles, passages = qa.counts()
    newest = qa.articles(0, EXAMPLE_TITLES)[1]
    context = {
        "articles": articles,
        "passages": passages,
        "examples": example_questions((a.title for a in newest), EXAMPLES),
        "settings": qa.settings,
    }
    return templates.TemplateResponse(request, "chat.html", context)


@router.get("/articles", response_class=HTMLResponse)
def article_list(
    request: Request,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    source: Annotated[str | None, Query(max_length=MAX_SOURCE_CHARS)] = None,
) -> Response:
    """The indexed articles, newest first, a page at a time, filtered by date and source; plain links and a
    plain form, no JavaScript."""
    qa: QA = request.app.state.qa
    filters = read_filters(since, until, source or None)
    total, articles = qa.articles((page - 1) * PAGE_SIZE, PAGE_SIZE, filters)
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:
        raise HTTPException(404, f"there is no page {page}: the articles fill {pages} page{'s' * (pages != 1)}")
    kept = {
        "since": filters.since.isoformat() if filters and filters.since else "",
        "until": filters.until.isoformat() if filters and filters.until else "",
        "source": filters.source[0] if filters and filters.source else "",
    }
    context = {
        "articles": articles,
        "total": total,
        "page": page,
        "pages": pages,
        "first": (page - 1) * PAGE_SIZE,
        "filters": kept,
        "filtered": filters is not None,
        "described": describe(filters) if filters else "",
        "sources": source_choices(qa.sources(), kept["source"]),
        "page_query": lambda n: urlencode({**{k: v for k, v in kept.items() if v}, "page": n}),
    }
    return templates.TemplateResponse(request, "articles.html", context)


def source_choices(sources: Sources, chosen: str = "") -> list[tuple[str, list[tuple[str, str]]]]:
    """The sources as groups of (value, label) options for a select: sites, folders, feeds (chat page and list)."""
    groups = [
        ("Sites", [(s.name, f"{s.name} ({s.articles})") for s in sources.sites]),
        ("Folders", [(f.name, f"{f.name}/ ({f.articles})") for f in sources.folders]),
        ("Feeds", [(f.name, f"{f.title or f.name} ({f.articles})") for f in sources.feeds]),
    ]
    known = {value for _, options in groups for value, _ in options}
    if chosen and chosen not in known:
        groups.append(("Asked for", [(chosen, chosen)]))
    return [(label, options) for label, options in groups if options]


@router.get("/articles/{article_id:path}", response_class=HTMLResponse)
def article_view(
    request: Request,
    article_id: str,
    start: Annotated[int | None, Query(ge=0)] = None,
    end: Annotated[int | None, Query(ge=0)] = None,
    offset: Annotated[int | None, Query(ge=0, le=10**9)] = None,
) -> Response:
    """An article, with the cited span (start..end) marked as #cited; works without JavaScript.

    A text longer than QA_MAX_TEXT_CHARS is shown a page at a time (around the cited span, or from `offset`),
    with links to the text before and after.
    """
    if not article_id:
        return RedirectResponse("/articles")
    qa: QA = request.app.state.qa
    article = qa.article(article_id)
    text, most = article.text, qa.settings.max_text_chars
    cited = (start, end) if start is not None and end is not None and start < end <= len(text) else None
    first = min(offset, len(text)) if offset is not None else bounded_window(0, len(text), cited or (0, 0), most)[0]
    last = min(first + most, len(text))
    context: dict[str, Any] = {
        "article": article,
        "url": safe_url(article.url),
        "before": text[first:last],
        "cited": "",
        "after": "",
        "earlier": _page_link(request, max(0, first - most)) if first > 0 else None,
        "later": _page_link(request, last) if last < len(text) else None,
    }
    if cited is not None and first <= cited[0] and cited[1] <= last:
        context.update(before=text[first : cited[0]], cited=text[cited[0] : cited[1]], after=text[cited[1] : last])
    return templates.TemplateResponse(request, "article.html", context)


def _page_link(request: Request, offset: int) -> str:
    """This page's address showing the text from `offset` (the cited span, if any, is kept)."""
    url = request.url.include_query_params(offset=offset)
    return f"{url.path}?{url.query}"
