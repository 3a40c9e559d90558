"""One access log line per request: request id, method, route template, status, duration (QA_LOG_FORMAT).

The route is the template (`/api/articles/{article_id:path}`), not the raw path: it keeps the metrics' label
values bounded and keeps questions (in /api/search's query string) out of the log. The request id is the
client's `X-Request-ID` when it is a plain token, otherwise a new one; either way the response carries it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+/=-]{1,128}")  # a token: nothing that could forge or break a log line
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)

logger = logging.getLogger("qa.access")


@dataclass(frozen=True)
class RequestRecord:
    """What the access log says about one request."""

    request_id: str
    method: str
    route: str
    status: int
    duration_ms: float
    client: str | None


class AccessLog:
    """ASGI middleware: gives each request an id, and hands a RequestRecord to each observer when it ends."""

    def __init__(
        self,
        app: ASGIApp,
        observers: Sequence[Callable[[RequestRecord], None]],
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.observers = list(observers)
        self.routes = routes  # to name the route of requests the router does not note in the scope (a Route, a Mount)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        arrived = dict(scope)  # the router rewrites the scope (a mount's root path); routes match this copy
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client")
            record = RequestRecord(
                request_id=request_id,
                method=scope["method"],
                route=route_template(scope, arrived, self.routes),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=client[0] if client else None,
            )
            for observe in self.observers:
                observe(record)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(given):
                return given
    return uuid.uuid4().hex


def route_template(scope: Scope, arrived: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route that served the request (a mount's prefix and `{path}`).

    FastAPI notes its own routes in the scope; other routes are found again by matching the scope as it arrived.
    """
    route = scope.get("route")
    if route is None:
        matches = [(r, r.matches(arrived)[0]) for r in routes]
        route = next((r for want in (Match.FULL, Match.PARTIAL) for r, match in matches if match == want), None)
    path: object = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


def log_request(record: RequestRecord) -> None:
    """Write the record to the `qa.access` logger."""
    logger.info("access", extra={"access": record})


class TextFormatter(logging.Formatter):
    """`time=… request_id=… method=GET route=/api/ask status=200 duration_ms=23.4 client=127.0.0.1`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {"time": _timestamp(record), **_fields(record)}
        return " ".join(f"{name}={'-' if value is None else value}" for name, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same fields as the text format."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": _timestamp(record), **_fields(record)})


def _fields(record: logging.LogRecord) -> dict[str, object]:
    access = getattr(record, "access", None)
    return asdict(access) if isinstance(access, RequestRecord) else {"message": record.getMessage()}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure(log_format: Literal["text", "json"]) -> None:
    """Send `qa.access` lines to stderr in the given format (replacing an earlier configuration of ours)."""
    for handler in [h for h in logger.handlers if getattr(h, "qa_access", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.qa_access = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
