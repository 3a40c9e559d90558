"""The JSON API under /api: ask, search, and read or change the articles."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from qa.articles.ids import ID_PATTERN, MAX_ID_CHARS
from qa.articles.reading import article_from_mapping
from qa.errors import InvalidArticle, PayloadTooLarge
from qa.records import Answer, Article, ArticleSummary, SearchHit, Turn
from qa.server.limits import rate_limited
from qa.service import QA

MAX_OFFSET = 10**9  # SQLite integers are 64-bit: an unbounded offset overflowed into a 500 (found by fuzzing)
# Text with something in it besides white space: str.split()'s white space, which includes \x1c-\x1f.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class AskRequest(BaseModel):
    """A question and how many passages to consider."""

    # The bounds are checked by the service (they are settings); the schema states them, see document_limits.
    question: str = Field(
        description="The question, up to QA_MAX_QUESTION_CHARS characters.",
        json_schema_extra={"minLength": 1, "pattern": NOT_BLANK},
    )
    top_k: int = Field(5, description="Passages to retrieve, 1 to QA_MAX_TOP_K.", ge=1)
    history: list[Turn] = Field(
        default=[],
        description="The conversation's earlier turns, oldest first (at most QA_MAX_HISTORY_TURNS, and"
        " QA_MAX_HISTORY_CHARS characters in all): a follow-up such as 'In what city?' is searched in their context."
        " The server keeps no state; the client sends the thread with each question.",
    )

    @field_validator("top_k", mode="before")
    @classmethod
    def _a_json_number(cls, value: Any) -> Any:
        if isinstance(value, str | bool):
            raise ValueError("top_k must be a JSON integer")  # pydantic would read "5" and true as numbers
        return value


class SearchResponse(BaseModel):
    """Passages for a query, best first."""

    results: list[SearchHit]


class ArticlePage(BaseModel):
    """A page of articles."""

    total: int
    offset: int
    limit: int
    articles: list[ArticleSummary]


class ArticleWrite(BaseModel):
    """What a write did to each article it touched."""

    articles: dict[str, str] = Field(description="Article id to added, updated, unchanged or deleted.")


class Health(BaseModel):
    """Liveness and size of the index."""

    status: str
    articles: int
    passages: int


class ErrorBody(BaseModel):
    """Every error from the API: a one-line message and the HTTP status."""

    error: str
    status: int


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "Malformed request (e.g. invalid multipart data)",
        401: "No API key sent",
        403: "Wrong API key, or writes disabled (no QA_API_KEY)",
        404: "No such article",
        409: "The index was built differently (model, format)",
        413: "Body, upload or article count over the limit",
        415: "Unsupported content type",
        422: "Invalid input",
        429: "Rate limit reached; see Retry-After",
        503: "The index is busy (another writer holds it too long), or the model or database is unavailable",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}


def _links(code: int, article_id: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a response to reading and deleting the article it names (for clients and fuzzers)."""
    parameters = {"article_id": article_id}
    return {
        code: {
            "links": {
                "GetArticle": {"operationId": "get_article_api_articles__article_id__get", "parameters": parameters},
                "DeleteArticle": {
                    "operationId": "delete_article_api_articles__article_id__delete",
                    "parameters": parameters,
                },
            }
        }
    }


def get_qa(request: Request) -> QA:
    """The QA object the app was built with."""
    qa: QA = request.app.state.qa
    return qa


def require_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Writes need `Authorization: Bearer <QA_API_KEY>`; with no key configured they are refused."""
    key = get_qa(request).settings.api_key
    if not key:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "writes are disabled: the server has no QA_API_KEY set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong API key")


QADep = Annotated[QA, Depends(get_qa)]
router = APIRouter(prefix="/api")


@router.post(
    "/ask",
    response_model=Answer,
    summary="Answer a question with cited passages",
    dependencies=[Depends(rate_limited)],
    responses=_errors(400, 409, 413, 422, 429, 503) | _links(200, "$response.body#/citations/0/article_id"),
)
def ask(body: AskRequest, qa: QADep) -> Answer:
    """An extractive answer whose sentences carry [n] markers into `citations`; `abstained` when nothing fits."""
    return qa.ask(body.question, body.top_k, history=body.history)


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="Find the passages most relevant to a query",
    dependencies=[Depends(rate_limited)],
    responses=_errors(409, 422, 429, 503) | _links(200, "$response.body#/results/0/article_id"),
)
def search(
    qa: QADep,
    q: Annotated[str, Query(description="The query.", json_schema_extra={"minLength": 1, "pattern": NOT_BLANK})],
    top_k: Annotated[int, Query(description="Passages to return, 1 to QA_MAX_TOP_K.", ge=1)] = 5,
) -> SearchResponse:
    """Passages best first, each with its supporting sentence's span as `highlight`."""
    return SearchResponse(results=qa.search(q, top_k))


@router.get(
    "/articles",
    response_model=ArticlePage,
    summary="List articles, newest first",
    responses=_errors(422) | _links(200, "$response.body#/articles/0/id"),
)
def list_articles(
    qa: QADep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ArticlePage:
    """A page of article summaries and the total."""
    total, page = qa.articles(offset, limit)
    return ArticlePage(total=total, offset=offset, limit=limit, articles=page)


@router.get(
    "/articles/{article_id:path}",
    response_model=Article,
    summary="One article with its full text",
    responses=_errors(404, 422),
)
def get_article(article_id: str, qa: QADep) -> Article:
    """The article's text and metadata; citation offsets index into `text`."""
    return qa.article(article_id)


_FIELD = {"type": ["string", "integer", "number", "null"]}
_ARTICLE_IN: dict[str, Any] = {
    "type": "object",
    "description": "An article; give it an id (or a URL to derive one from). Numbers are read as text.",
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_CHARS,
            "pattern": ID_PATTERN,
            "description": "Stable id: text without control or invisible format characters.",
        },
        "text": {"type": "string", "pattern": NOT_BLANK},
        **{name: _FIELD for name in ("title", "url", "published", "author", "source")},
    },
    "required": ["id", "text"],
}
_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _ARTICLE_IN},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/articles",
    response_model=ArticleWrite,
    status_code=201,
    dependencies=[Depends(require_key)],
    openapi_extra=_UPLOAD_DOC,
    responses=_errors(400, 401, 403, 409, 413, 415, 422, 503) | _links(201, "$request.body#/id"),
    summary="Add or replace an article (JSON, or an uploaded .txt/.md/.html/.json/.jsonl file)",
)
async def add_article(request: Request, qa: QADep) -> ArticleWrite:
    """Indexed before the response: the next question can cite it."""
    limit = qa.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidArticle("upload", "send the article as a form field named 'file'")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"the file is over the {limit}-byte limit")
        statuses = await run_in_threadpool(qa.add_file, data, upload.filename or "upload.txt")
        return ArticleWrite(articles=statuses)
    if content_type not in ("application/json", ""):
        raise HTTPException(415, "send application/json or multipart/form-data")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArticle("request body", "invalid JSON") from e
    if isinstance(payload, dict) and not payload.get("id") and not payload.get("url"):
        raise InvalidArticle("request body", "give the article an 'id' or a 'url'")
    article = article_from_mapping(payload, default_id="", where="request body")
    status_ = await run_in_threadpool(qa.add, article)
    return ArticleWrite(articles={article.id: status_})


@router.delete(
    "/articles/{article_id:path}",
    response_model=ArticleWrite,
    dependencies=[Depends(require_key)],
    summary="Remove an article from the index",
    responses=_errors(401, 403, 404, 422, 503),
)
def delete_article(article_id: str, qa: QADep) -> ArticleWrite:
    """Gone before the response: it is never cited again."""
    qa.delete(article_id)
    return ArticleWrite(articles={article_id: "deleted"})


def document_limits(
    schema: dict[str, Any], max_question_chars: int, max_top_k: int, max_history_turns: int = 20
) -> dict[str, Any]:
    """The OpenAPI schema with the configured question length, top_k and history bounds written in."""
    ask = schema["components"]["schemas"]["AskRequest"]["properties"]
    ask["question"]["maxLength"] = max_question_chars
    ask["top_k"]["maximum"] = max_top_k
    ask["history"]["maxItems"] = max_history_turns
    for parameter in schema["paths"]["/api/search"]["get"]["parameters"]:
        if parameter["name"] == "q":
            parameter["schema"]["maxLength"] = max_question_chars
        elif parameter["name"] == "top_k":
            parameter["schema"]["maximum"] = max_top_k
    return schema


health_router = APIRouter()


@health_router.get("/healthz", response_model=Health, summary="Liveness and index size")
def healthz(qa: QADep) -> Health:
    """ok with the number of articles and passages."""
    articles, passages = qa.counts()
    return Health(status="ok", articles=articles, passages=passages)
