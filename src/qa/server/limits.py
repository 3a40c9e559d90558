"""Abuse limits at the HTTP edge: a per-client rate limit and a request body cap."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.server.errors import error_response

MULTIPART_ALLOWANCE = 64 * 1024  # room for a multipart envelope around an upload of the largest size


class TokenBucket:
    """Per-client token buckets: `rate` tokens a second, at most `burst` saved up; in-process only."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds until `client` has a token (0 when it has one now), spending nothing."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, client: str) -> float:
        """Spend one token of `client`'s; 0 when allowed, else the seconds until a token is there."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > self._max_clients:
                    self._forget_full(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop clients whose buckets have refilled: they are the same as unknown ones, so memory stays bounded."""
        full = [c for c, (tokens, then) in self._buckets.items() if tokens + (now - then) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]


def rate_limited(request: Request) -> None:
    """Dependency: 429 with Retry-After when the client IP has used up its tokens (QA_RATE_LIMIT, QA_RATE_BURST)."""
    refusal = rate_limit_refusal(request)
    if refusal is not None:
        raise refusal


def rate_limit_refusal(request: Request) -> HTTPException | None:
    """None when the request may go ahead; else the 429 to answer. One token per call.

    The HTTP routes (rate_limited) and the MCP tools served at /mcp take from the same per-client bucket.
    """
    bucket: TokenBucket | None = getattr(request.app.state, "rate_limiter", None)
    if bucket is None or _holds_the_key(request):
        return None
    wait = bucket.take(client_address(request))
    return too_many(wait, f"at most {bucket.rate:g} a second (bursts of {bucket.burst})") if wait else None


def client_address(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy forwarded (uvicorn applies QA_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


def too_many(wait: float, limit: str) -> HTTPException:
    """429 with the seconds to wait as Retry-After."""
    retry = max(1, math.ceil(wait))
    return HTTPException(429, f"too many requests: {limit}; retry in {retry} s", headers={"Retry-After": str(retry)})


def check_auth_failures(request: Request) -> None:
    """429 when this client has sent too many wrong or missing API keys lately (QA_AUTH_FAILURES a minute)."""
    bucket: TokenBucket | None = getattr(request.app.state, "auth_failures", None)
    if bucket is not None and (wait := bucket.wait(client_address(request))):
        raise too_many(wait, f"at most {bucket.burst} failed API keys a minute")


def count_auth_failure(request: Request) -> None:
    """One more failed API key from this client."""
    bucket: TokenBucket | None = getattr(request.app.state, "auth_failures", None)
    if bucket is not None:
        bucket.take(client_address(request))


def _holds_the_key(request: Request) -> bool:
    """The API key holder is trusted (SECURITY.md): scripts and services that send it are not rate-limited."""
    key: str | None = request.app.state.qa.settings.api_key
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return (
        bool(key) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), (key or "").encode())
    )


class RequestLimits:
    """ASGI middleware: cut request bodies off at `max_body` bytes (413).

    A body with a larger Content-Length is refused before any of it is read; a streamed body (no Content-Length)
    is counted as it arrives and the request fails as soon as it passes the limit, so nothing is spooled whole.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            message = f"the request body is {declared} bytes; the limit is {self.max_body}"
            await _error(scope, 413, message, {"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"the request body is over the {self.max_body}-byte limit")
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _error(scope: Scope, status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    path = scope.get("path", "")
    response = error_response(path, status, message, headers) or error_response("/api/", status, message, headers)
    assert response is not None
    return response
