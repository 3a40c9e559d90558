"""Prometheus metrics at /metrics: requests, latencies, answers, the index's size, ingests and rebuilds.

Counters and histograms live in prometheus_client's process registry (with its process_* and python_* metrics);
the library's events (qa.events) feed the ask, search and index-write ones, so answers through any face and
writes through the API, `qa ingest`'s library call or the watcher are counted alike. The index's size is read
when Prometheus scrapes. With several workers, set PROMETHEUS_MULTIPROC_DIR (`qa serve --workers N` does): each
process writes its values to files there and a scrape adds them up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from qa import events
from qa.errors import QAError
from qa.server.api import require_key
from qa.service import QA

log = logging.getLogger(__name__)

# No `_created` series beside every counter and histogram: noise on most dashboards.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds: an answer takes tens of milliseconds idle and can queue for seconds under load.
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
WRITE_LATENCY = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

REQUESTS = Counter(
    "qa_http_requests", "HTTP requests by method, route template and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "qa_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY,
)
ASK_SECONDS = Histogram(
    "qa_ask_duration_seconds", "Time to answer a question (the API, the OpenAI endpoint and MCP).", buckets=LATENCY
)
SEARCH_SECONDS = Histogram("qa_search_duration_seconds", "Time to run a search (the API and MCP).", buckets=LATENCY)
QUERY_ERRORS = Counter(
    "qa_query_errors", "Questions and searches refused or failed (e.g. an over-long question).", ["operation"]
)
ANSWERS = Counter("qa_answers", "Questions answered, by outcome: answered or abstained.", ["outcome"])
CONFIDENCE = Histogram(
    "qa_answer_confidence",
    "The confidence (0..1) of answers that carry one.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
RATE_LIMITED = Counter(
    "qa_rate_limited_requests", "Requests and MCP tool calls refused by the per-client rate limit, by route.", ["route"]
)
INDEX_WRITES = Counter(
    "qa_index_writes",
    "Ingests (files, uploads, the watcher), deletes and rebuilds, by outcome.",
    ["operation", "outcome"],
)
INDEX_WRITE_SECONDS = Histogram(
    "qa_index_write_duration_seconds",
    "Time an ingest, delete or rebuild took, waiting for the writer lock included.",
    ["operation"],
    buckets=WRITE_LATENCY,
)
ARTICLES_WRITTEN = Counter(
    "qa_ingest_articles",
    "Articles an ingest or delete handled, by status: added, updated, unchanged, deleted.",
    ["status"],
)


def observe(event: events.Event) -> None:
    """Count one library event."""
    if isinstance(event, events.IndexWrite):
        INDEX_WRITES.labels(event.operation, "ok" if event.ok else "error").inc()
        INDEX_WRITE_SECONDS.labels(event.operation).observe(event.seconds)
        for article_status, count in event.articles.items():
            ARTICLES_WRITTEN.labels(article_status).inc(count)
        return
    if not event.ok:
        QUERY_ERRORS.labels(event.operation).inc()
        return
    if event.operation == "search":
        SEARCH_SECONDS.observe(event.seconds)
        return
    ASK_SECONDS.observe(event.seconds)
    ANSWERS.labels("abstained" if event.abstained else "answered").inc()
    if event.confidence is not None:
        CONFIDENCE.observe(event.confidence)


events.listen(observe)


def observe_request(method: str, route: str, status_code: int, seconds: float) -> None:
    """Count one finished HTTP request (called by the access log middleware)."""
    REQUESTS.labels(method, route, str(status_code)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)
    if status_code == 429:
        RATE_LIMITED.labels(route).inc()


class IndexSize:
    """Articles and passages in the index, read at scrape time (every worker shares one index)."""

    def __init__(self, qa: QA) -> None:
        self.qa = qa

    def collect(self) -> Iterator[Metric]:
        try:
            articles, passages = self.qa.counts()
        except QAError as e:  # the database is down, say: the other metrics are still worth a scrape
            log.warning("metrics: the index's size is unavailable: %s", e)
            return
        yield GaugeMetricFamily("qa_articles", "Articles in the index.", value=articles)
        yield GaugeMetricFamily("qa_passages", "Passages in the index.", value=passages)


class Scrape:
    """Every collector of one scrape, as one."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(qa: QA) -> bytes:
    """The metrics in Prometheus' text format: this process's, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        workers = CollectorRegistry()
        MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
        return generate_latest(Scrape([workers, IndexSize(qa)]))
    return generate_latest(Scrape([REGISTRY, IndexSize(qa)]))


def scrape_allowed(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """/metrics needs `Authorization: Bearer <QA_API_KEY>` (Prometheus' `authorization` setting), unless
    QA_METRICS_PUBLIC=true."""
    settings = request.app.state.qa.settings
    if settings.metrics_public:
        return
    if not settings.api_key:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "metrics need QA_API_KEY (sent as a Bearer token) or QA_METRICS_PUBLIC=true"
        )
    require_key(request, authorization)


router = APIRouter(include_in_schema=False)


@router.get("/metrics", dependencies=[Depends(scrape_allowed)])
def metrics(request: Request) -> Response:
    """Prometheus text format 0.0.4 (every Prometheus reads it; our names need none of 1.0.0's escaping)."""
    return Response(exposition(request.app.state.qa), media_type=CONTENT_TYPE_PLAIN_0_0_4)
