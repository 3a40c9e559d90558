"""What the library reports as it works, for whoever listens (the server's Prometheus metrics).

The library publishes; adapters subscribe. Nothing is kept here, and a listener that fails is logged, never
allowed to fail the ingest or the question that published the event.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class IndexWrite:
    """An ingest, delete or rebuild finished (`ok`) or failed, with what it did to the articles."""

    operation: Literal["ingest", "delete", "rebuild"]
    seconds: float
    ok: bool
    articles: Mapping[str, int] = field(default_factory=dict)  # by status: added, updated, unchanged, deleted


@dataclass(frozen=True)
class Query:
    """A question answered or a search run; an answer's abstention and confidence (when it has one)."""

    operation: Literal["ask", "search"]
    seconds: float
    ok: bool
    abstained: bool | None = None
    confidence: float | None = None


Event = IndexWrite | Query
Listener = Callable[[Event], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Call `listener` with every event from now on (once, however often it is added)."""
    if listener not in _listeners:
        _listeners.append(listener)


def stop_listening(listener: Listener) -> None:
    """No more events for `listener`."""
    if listener in _listeners:
        _listeners.remove(listener)


def publish(event: Event) -> None:
    """Hand `event` to every listener."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:
            log.exception("an event listener failed on %r", event)


@contextmanager
def index_write(operation: Literal["ingest", "delete", "rebuild"]) -> Iterator[dict[str, int]]:
    """Time a write and publish it when it ends; the caller fills in the article counts it yields."""
    articles: dict[str, int] = {}
    started = time.perf_counter()
    ok = False
    try:
        yield articles
        ok = True
    finally:
        publish(IndexWrite(operation, time.perf_counter() - started, ok, articles))


def query(operation: Literal["ask", "search"]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate `QA.ask` or `QA.search`: each call is timed and published, with the answer's outcome."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            outcome: object = None
            try:
                result = function(*args, **kwargs)
                outcome = result
                return result
            finally:
                seconds = time.perf_counter() - started
                abstained, confidence = getattr(outcome, "abstained", None), getattr(outcome, "confidence", None)
                publish(Query(operation, seconds, outcome is not None, abstained, confidence))

        return timed

    return decorate
