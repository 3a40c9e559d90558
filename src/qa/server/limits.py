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
    bucket: TokenBucket | None = getattr(request.app.state, "rate_limiter", None)
    if bucket is None or _holds_the_key(request):
        return
    client = request.client.host if request.client else "unknown"
    wait = bucket.take(client)
    if wait:
        retry = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many requests: at most {bucket.rate:g} a second (bursts of {bucket.burst}); retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


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
            await _error(413, message, {"Connection": "close"})(scope, receive, send)
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


def _error(status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)
