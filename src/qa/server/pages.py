"""The HTML pages: the chat page at / and the article view that citations open."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from qa.server.assets import templates
from qa.service import QA

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


@router.get("/", response_class=HTMLResponse)
def chat(request: Request) -> Response:
    """The conversation page; questions go to /api/ask from web/static/chat.js."""
    qa: QA = request.app.state.qa
    articles, passages = qa.counts()
    return templates.TemplateResponse(request, "chat.html", {"articles": articles, "passages": passages})


@router.get("/articles/{article_id:path}", response_class=HTMLResponse)
def article_view(
    request: Request,
    article_id: str,
    start: Annotated[int | None, Query(ge=0)] = None,
    end: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """An article, with the cited span (start..end) marked as #cited; works without JavaScript."""
    qa: QA = request.app.state.qa
    article = qa.article(article_id)
    context: dict[str, Any] = {
        "article": article,
        "url": safe_url(article.url),
        "before": article.text,
        "cited": "",
        "after": "",
    }
    if start is not None and end is not None and start < end <= len(article.text):
        context.update(before=article.text[:start], cited=article.text[start:end], after=article.text[end:])
    return templates.TemplateResponse(request, "article.html", context)
