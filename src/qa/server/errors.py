"""Domain errors to HTTP: one place decides the status code and the shape of every error.

JSON `{"error", "status"}` for /api, /healthz, /metrics and /mcp; OpenAI's `{"error": {"message", "type", "param",
"code"}}` for the OpenAI-compatible /v1 (with 400 for invalid input, as OpenAI answers); an HTML page elsewhere.
"""

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


# OpenAI's error type and code for each status (the code is overridden where it says more, e.g. model_not_found).
OPENAI_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("invalid_request_error", "index_mismatch"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "service_unavailable"),
}


class CodedHTTPException(StarletteHTTPException):
    """An HTTP error with a machine-readable code for OpenAI-style bodies (e.g. model_not_found)."""

    def __init__(self, status_code: int, detail: str, code: str, param: str | None = None) -> None:
        super().__init__(status_code, detail)
        self.code = code
        self.param = param


def error_response(
    path: str,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse | None:
    """The JSON error for a request to `path`, in the shape its face speaks; None where an HTML page is due."""
    if path.startswith("/v1/"):
        status = 400 if status == 422 else status  # OpenAI (and vLLM) answer invalid input with 400
        kind, default_code = OPENAI_ERRORS.get(
            status, ("invalid_request_error" if status < 500 else "server_error", "")
        )
        body = {"message": message, "type": kind, "param": param, "code": code or default_code or None}
        return JSONResponse({"error": body}, status_code=status, headers=headers)
    if path.startswith("/api/") or path in ("/healthz", "/metrics", "/mcp"):
        return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
    return None


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

    def respond(
        request: Request,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> Response:
        response: Response | None = error_response(request.url.path, status, message, None, code, param)
        if response is None:
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
        code, param = getattr(exc, "code", None), getattr(exc, "param", None)
        return respond(request, exc.status_code, str(exc.detail), headers, code, param)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> Response:
        # Python's JSON parser recurses once per level: a body nested 10^5 deep is bad input, not a crash.
        return respond(request, 422, "the request is nested too deeply to read")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        import logging

        request_id = getattr(request.state, "request_id", "-")
        logging.getLogger("qa").exception("unexpected error on %s (request %s)", request.url.path, request_id)
        # This handler answers outside the access log's middleware, so it puts the request id back itself.
        headers = {"X-Request-ID": request_id} if request_id != "-" else None
        return respond(request, 500, "internal error; the server log has the details", headers)
