"""Domain errors to HTTP: one place decides the status code, JSON for /api, an HTML page elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from qa.errors import (
    ArticleNotFound,
    DatabaseUnavailable,
    FeedNotFound,
    FetchFailed,
    FetchRefused,
    FetchTimeout,
    IndexBusy,
    IndexMismatch,
    InvalidArticle,
    InvalidFeed,
    InvalidQuestion,
    InvalidURL,
    ModelUnavailable,
    PayloadTooLarge,
    QAError,
    ReaderUnavailable,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
"""Sent with every response; error responses get them here too, since the 500 handler runs outside the app's
middleware."""

STATUS: dict[type[QAError], int] = {
    ArticleNotFound: 404,
    FeedNotFound: 404,
    # Fetching: a refused address or robots.txt is 403 (qa may not fetch it), a URL it cannot use 422, a site
    # that fails 502, one too slow 504. FetchTimeout comes before FetchFailed, its parent.
    FetchRefused: 403,
    InvalidURL: 422,
    InvalidFeed: 422,
    FetchTimeout: 504,
    FetchFailed: 502,
    InvalidArticle: 422,
    InvalidQuestion: 422,
    PayloadTooLarge: 413,
    IndexBusy: 503,
    IndexMismatch: 409,
    DatabaseUnavailable: 503,
    ModelUnavailable: 503,
    ReaderUnavailable: 503,
}


def status_for(error: QAError) -> int:
    """The HTTP status of a domain error."""
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), 400)


def allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route serves at the request's path, as an Allow header value."""
    methods: set[str] = set()
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        for route in app.router.routes:
            if route.matches(scope)[0] == Match.FULL:
                # Mounted static files answer only GET and HEAD; routes matched in full serve this method.
                methods |= {"GET", "HEAD"} if isinstance(route, Mount) else {method}
    return ", ".join(sorted(methods)) or "GET, HEAD"


def install_error_handlers(app: FastAPI, render_error: Any) -> None:
    """Map domain errors, validation errors and HTTP errors to JSON (API) or an error page (HTML)."""

    def respond(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        response: Response
        if request.url.path.startswith("/api/") or request.url.path == "/healthz":
            response = JSONResponse({"error": message, "status": status}, status_code=status)
        else:
            response = render_error(request, status, message)
        response.headers.update({**SECURITY_HEADERS, **(headers or {})})
        return response

    @app.exception_handler(QAError)
    async def domain_error(request: Request, exc: QAError) -> Response:
        return respond(request, status_for(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
        return respond(request, 422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; a path served by several routes has more.
            allow = allowed_methods(app, request)
            headers = {**(headers or {}), "Allow": allow}
            return respond(request, 405, f"method {request.method} is not allowed here; use {allow}", headers)
        return respond(request, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> Response:
        # Python's JSON parser recurses once per level: a body nested 10^5 deep is bad input, not a crash.
        return respond(request, 422, "the request is nested too deeply to read")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("qa").exception("unexpected error on %s", request.url.path)
        return respond(request, 500, "internal error; the server log has the details")
