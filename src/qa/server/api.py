"""The JSON API under /api: ask, search, and read or change the articles."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from qa.articles.ids import ID_PATTERN, MAX_ID_CHARS
from qa.articles.reading import article_from_mapping, load_json
from qa.errors import InvalidArticle, InvalidURL, PayloadTooLarge
from qa.records import Answer, ArticlePage, ArticleText, Filters, SearchResults, Sources, Turn
from qa.retrieval.filters import MAX_SOURCE_CHARS, MAX_SOURCES, read_filters
from qa.server.limits import check_auth_failures, count_auth_failure, rate_limited
from qa.service import QA

SINCE = "Only articles published on or after this date (YYYY-MM-DD, or an ISO date and time)."
UNTIL = "Only articles published on or before this date (YYYY-MM-DD, inclusive)."
SOURCE = (
    "Only articles from these sources, as GET /api/sources names them: a site (`example.org`, `Reuters`), a folder"
    " of files (`corpus/business`, with its subfolders) or a feed URL; one name or a list (any of them)."
)
# The schema says what is accepted: a date, or nothing ("" as an empty form field sends it, or null). The API
# also takes an ISO date and time, whose date counts.
DATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}, {"type": "null"}]
}
SOURCE_NAME: dict[str, Any] = {"type": "string", "maxLength": MAX_SOURCE_CHARS}
SOURCE_SCHEMA: dict[str, Any] = {
    "anyOf": [SOURCE_NAME, {"type": "array", "items": SOURCE_NAME, "maxItems": MAX_SOURCES}, {"type": "null"}]
}
SOURCE_QUERY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "array", "items": SOURCE_NAME, "maxItems": MAX_SOURCES}, {"type": "null"}]
}
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
        default_factory=list,
        description=(
            "The conversation's earlier turns, oldest first: each question, the server's answer and the ids of the"
            " articles it cited (at most QA_MAX_HISTORY_TURNS turns and QA_MAX_HISTORY_CHARS characters in all). A"
            " follow-up such as 'In what city?' is searched in their context. The server keeps no state: the client"
            " sends the thread with each question."
        ),
    )
    since: str | None = Field(None, description=SINCE, json_schema_extra=DATE_SCHEMA)
    until: str | None = Field(None, description=UNTIL, json_schema_extra=DATE_SCHEMA)
    source: str | list[str] | None = Field(None, description=SOURCE, json_schema_extra=SOURCE_SCHEMA)

    @field_validator("top_k", mode="before")
    @classmethod
    def _a_json_number(cls, value: Any) -> Any:
        if isinstance(value, str | bool):
            raise ValueError("top_k must be a JSON integer")  # pydantic would read "5" and true as numbers
        return value


def filters_of(request: AskRequest) -> Filters | None:
    """The one place a request's since/until/source become Filters (422 naming the field when they cannot)."""
    return read_filters(request.since, request.until, request.source)


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
        403: "Wrong API key, writes disabled (no QA_API_KEY), or fetching the URL refused (its address is not"
        " public and not in QA_FETCH_ALLOW, or robots.txt disallows it)",
        404: "No such article",
        409: "The index was built differently (model, format)",
        413: "Body, upload or article count over the limit",
        415: "Unsupported content type",
        422: "Invalid input",
        429: "Rate limit reached, or too many wrong API keys; see Retry-After",
        502: "The URL's site could not be reached, answered with an error or sent too much",
        503: "The index is busy (another writer holds it too long), or the model or database is unavailable",
        504: "The URL's site did not answer in time",
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
    """Writes need `Authorization: Bearer <QA_API_KEY>`; with no key configured they are refused.

    Failed keys count against the client: after QA_AUTH_FAILURES a minute, it gets 429 until the minute refills.
    """
    key = get_qa(request).settings.api_key
    if not key:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "writes are disabled: the server has no QA_API_KEY set")
    check_auth_failures(request)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        count_auth_failure(request)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.strip().encode(), key.encode()):
        count_auth_failure(request)
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
    """An extractive answer whose sentences carry [n] markers into `citations`; `abstained` when nothing fits.

    `since`, `until` and `source` limit the articles it may cite; a time the question names ("in June 1987",
    "last month") narrows them further. `filters` in the answer says what applied.
    """
    return qa.ask(body.question, body.top_k, history=body.history, filters=filters_of(body))


@router.get(
    "/search",
    response_model=SearchResults,
    summary="Find the passages most relevant to a query",
    dependencies=[Depends(rate_limited)],
    responses=_errors(409, 422, 429, 503) | _links(200, "$response.body#/results/0/article_id"),
)
def search(
    qa: QADep,
    q: Annotated[str, Query(description="The query.", json_schema_extra={"minLength": 1, "pattern": NOT_BLANK})],
    top_k: Annotated[int, Query(description="Passages to return, 1 to QA_MAX_TOP_K.", ge=1)] = 5,
    since: Annotated[str | None, Query(description=SINCE, json_schema_extra=DATE_SCHEMA)] = None,
    until: Annotated[str | None, Query(description=UNTIL, json_schema_extra=DATE_SCHEMA)] = None,
    source: Annotated[
        list[str] | None, Query(description=SOURCE + " Repeat it for several.", json_schema_extra=SOURCE_QUERY_SCHEMA)
    ] = None,
) -> SearchResults:
    """Passages best first, each with its supporting sentence's span as `highlight`; with since/until/source, of
    the matching articles only (top_k of them whenever that many passages match)."""
    return SearchResults(results=qa.search(q, top_k, filters=read_filters(since, until, source)))


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
    since: Annotated[str | None, Query(description=SINCE, json_schema_extra=DATE_SCHEMA)] = None,
    until: Annotated[str | None, Query(description=UNTIL, json_schema_extra=DATE_SCHEMA)] = None,
    source: Annotated[
        list[str] | None, Query(description=SOURCE + " Repeat it for several.", json_schema_extra=SOURCE_QUERY_SCHEMA)
    ] = None,
) -> ArticlePage:
    """A page of article summaries (those the filters allow) and their total."""
    total, page = qa.articles(offset, limit, read_filters(since, until, source))
    return ArticlePage(total=total, offset=offset, limit=limit, articles=page)


@router.get(
    "/articles/{article_id:path}",
    response_model=ArticleText,
    summary="One article with its text (paged when very long)",
    responses=_errors(404, 422),
)
def get_article(
    article_id: str,
    qa: QADep,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="First character of the text to return.")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, description="Most characters of text to return (at most QA_MAX_TEXT_CHARS).")
    ] = None,
) -> ArticleText:
    """The article's metadata and its text from `start`: the whole text unless it is longer than QA_MAX_TEXT_CHARS.

    Citation offsets index into the whole text; `text_start` says where this page of it begins, `next_start`
    where the next one does.
    """
    return qa.article_text(article_id, start, limit)


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
_URL_IN: dict[str, Any] = {
    "type": "object",
    "description": "A page to fetch and read (HTML): its article's id is the slug of its canonical URL.",
    "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
    },
    "required": ["url"],
    "additionalProperties": False,
}
_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"anyOf": [_ARTICLE_IN, _URL_IN]}},
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
    responses=_errors(400, 401, 403, 409, 413, 415, 422, 429, 502, 503, 504) | _links(201, "$request.body#/id"),
    summary="Add or replace an article (JSON, a URL to fetch, or an uploaded .txt/.md/.html/.json/.jsonl file)",
)
async def add_article(request: Request, qa: QADep) -> ArticleWrite:
    """Indexed before the response: the next question can cite it.

    `{"url": "https://..."}` alone fetches the page (public addresses only, unless QA_FETCH_ALLOW lists it;
    robots.txt honoured) and reads it; the article's id is the slug of its canonical URL, so fetching the same
    story again updates it.
    """
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
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    payload = load_json(bytes(body), "request body")
    if isinstance(payload, dict) and "url" in payload and not any(k in payload for k in ("text", "body", "content")):
        return ArticleWrite(articles=await run_in_threadpool(qa.add_url, _url_to_fetch(payload)))
    if isinstance(payload, dict) and not payload.get("id") and not payload.get("url"):
        raise InvalidArticle("request body", "give the article an 'id' or a 'url'")
    article = article_from_mapping(payload, default_id="", where="request body")
    status_ = await run_in_threadpool(qa.add, article)
    return ArticleWrite(articles={article.id: status_})


def _url_to_fetch(payload: dict[str, Any]) -> str:
    """The URL of a `{"url": ...}` body (a page to fetch); InvalidURL for anything else in it."""
    url = payload["url"]
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL("'url' must be a non-empty string")
    if len(payload) > 1:
        others = ", ".join(sorted(repr(k) for k in payload if k != "url"))
        raise InvalidURL(f"to fetch a page send only its 'url' (not {others}); to send an article, include its 'text'")
    return url


@router.get("/sources", response_model=Sources, summary="Sites, corpus folders and feeds, with article counts")
def sources(qa: QADep) -> Sources:
    """Articles and newest publication date per site (fetched and uploaded articles, by `source`), per corpus
    folder, and per followed feed."""
    return qa.sources()


@router.delete(
    "/articles/{article_id:path}",
    response_model=ArticleWrite,
    dependencies=[Depends(require_key)],
    summary="Remove an article from the index",
    responses=_errors(401, 403, 404, 422, 429, 503),
)
def delete_article(article_id: str, qa: QADep) -> ArticleWrite:
    """Gone before the response: it is never cited again."""
    qa.delete(article_id)
    return ArticleWrite(articles={article_id: "deleted"})


def document_limits(
    schema: dict[str, Any], max_question_chars: int, max_top_k: int, max_history_turns: int
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
