"""/metrics: a real server scraped over HTTP and parsed with prometheus_client's own parser; the key rule; the
multiprocess mode of `--workers N`; the library events that feed it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fixtures import API_KEY, SAMPLE_ID
from qa import QA, events
from qa.records import Article
from qa.server.app import create_app
from qa.settings import Settings
from serving import serving

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def parse(exposition: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


@pytest.fixture
def limited_qa(sample_qa: QA) -> QA:
    """The sample index behind a tight rate limit (3 requests, then about one a minute)."""
    return QA(sample_qa.settings.model_copy(update={"rate_limit": 0.01, "rate_burst": 3}), sample_qa.embedder)


@pytest.fixture
def base_url(limited_qa: QA) -> Iterator[str]:
    with serving(create_app(limited_qa)) as url:
        yield url


def test_a_scrape_counts_requests_answers_writes_and_the_index(base_url: str, limited_qa: QA) -> None:
    before = scrape(base_url)
    with httpx.Client(base_url=base_url, timeout=60) as http:
        assert http.post("/api/ask", json={"question": "What does Nurly Zhol mean?"}).status_code == 200
        assert http.post("/api/ask", json={"question": "How cold is liquid nitrogen?"}).json()["abstained"]
        assert http.get("/api/search", params={"q": "oil reserves"}).status_code == 200
        assert http.post("/api/ask", json={"question": "Who met in Astana?"}).status_code == 429
        article = {"id": "otters", "title": "Otters", "text": "Sea otters hold hands while they sleep."}
        assert http.post("/api/articles", json=article, headers=AUTH).status_code == 201
        assert http.get(f"/api/articles/{SAMPLE_ID}").status_code == 200
    limited_qa.rebuild()  # the library, in this process: its events reach the same metrics
    after = scrape(base_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "qa_http_requests_total"
    assert delta(requests, method="POST", route="/api/ask", status="200") == 2
    assert delta(requests, method="POST", route="/api/ask", status="429") == 1
    assert delta(requests, method="GET", route="/api/articles/{article_id:path}", status="200") == 1
    assert not any(SAMPLE_ID in dict(labels).get("route", "") for _, labels in after)  # templates, not paths
    assert delta("qa_http_request_duration_seconds_count", method="GET", route="/api/search") == 1
    assert delta("qa_ask_duration_seconds_count") == 2
    assert delta("qa_ask_duration_seconds_bucket", le="+Inf") == 2
    assert delta("qa_search_duration_seconds_count") == 1
    assert delta("qa_answers_total", outcome="answered") == 1
    assert delta("qa_answers_total", outcome="abstained") == 1
    assert delta("qa_rate_limited_requests_total", route="/api/ask") == 1
    assert delta("qa_ingest_articles_total", status="added") == 1
    assert delta("qa_index_writes_total", operation="ingest", outcome="ok") == 1
    assert delta("qa_index_writes_total", operation="rebuild", outcome="ok") == 1
    assert delta("qa_index_write_duration_seconds_count", operation="rebuild") == 1
    articles, passages = limited_qa.counts()
    assert (value(after, "qa_articles"), value(after, "qa_passages")) == (articles, passages) == (2, passages)
    assert value(after, "process_resident_memory_bytes") > 0  # prometheus_client's own process metrics


def _client(sample_qa: QA, settings: Settings, **overrides: object) -> TestClient:
    return TestClient(create_app(QA(settings.model_copy(update=overrides), sample_qa.embedder)))


def test_metrics_need_the_api_key_unless_public(sample_qa: QA, settings: Settings) -> None:
    with _client(sample_qa, settings) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
        assert missing.json()["status"] == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert "qa_articles 1.0" in client.get("/metrics", headers=AUTH).text
    with _client(sample_qa, settings, api_key=None) as client:
        refused = client.get("/metrics", headers=AUTH)
        assert refused.status_code == 403 and "QA_METRICS_PUBLIC" in refused.json()["error"]
    with _client(sample_qa, settings, api_key=None, metrics_public=True) as client:
        assert client.get("/metrics").status_code == 200


MULTIPROCESS = """
import multiprocessing, sys
from pathlib import Path
from qa import QA, Settings
from qa.server import metrics

def serve(requests):
    for _ in range(requests):
        metrics.observe_request("GET", "/healthz", 200, 0.01)

if __name__ == "__main__":
    workers = [multiprocessing.get_context("spawn").Process(target=serve, args=(n,)) for n in (2, 3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sys.stdout.write(metrics.exposition(QA(Settings(index_dir=Path(sys.argv[1])))).decode())
"""


def test_workers_metrics_are_added_up_in_multiprocess_mode(_sample_index: Path, tmp_path: Path) -> None:
    """What `qa serve --workers N` sets up: each worker writes to PROMETHEUS_MULTIPROC_DIR, a scrape sums them."""
    script = tmp_path / "workers.py"
    script.write_text(MULTIPROCESS)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    result = subprocess.run(
        [sys.executable, str(script), str(_sample_index)], env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    samples = parse(result.stdout)
    assert value(samples, "qa_http_requests_total", method="GET", route="/healthz", status="200") == 5
    assert value(samples, "qa_articles") == 1
    assert len(list(folder.glob("counter_*.db"))) == 2  # one file per worker


def test_confidence_and_errors_are_counted_from_events() -> None:
    """Answers that carry a confidence (the learned scorer's) fill its histogram; failures count as errors."""
    before = parse(generate_latest().decode())
    events.publish(events.Query("ask", 0.02, ok=True, abstained=False, confidence=0.85))
    events.publish(events.Query("search", 0.01, ok=False))
    events.publish(events.IndexWrite("ingest", 1.5, ok=False))
    after = parse(generate_latest().decode())
    assert (
        value(after, "qa_answer_confidence_bucket", le="0.9") - value(before, "qa_answer_confidence_bucket", le="0.9")
        == 1
    )
    assert value(after, "qa_answer_confidence_bucket", le="0.8") == value(
        before, "qa_answer_confidence_bucket", le="0.8"
    )
    assert (
        value(after, "qa_query_errors_total", operation="search")
        - value(before, "qa_query_errors_total", operation="search")
        == 1
    )
    assert (
        value(after, "qa_index_writes_total", operation="ingest", outcome="error")
        - value(before, "qa_index_writes_total", operation="ingest", outcome="error")
        == 1
    )


def test_library_events_are_published_and_a_failing_listener_fails_nothing(qa: QA) -> None:
    seen: list[events.Event] = []

    def broken(event: events.Event) -> None:
        raise RuntimeError("a listener's bug")

    events.listen(broken)
    events.listen(seen.append)
    try:
        qa.add(Article(id="otters", title="Otters", text="Sea otters hold hands while they sleep."))
        assert qa.ask("Do otters hold hands?").abstained is False
        with pytest.raises(Exception, match="empty"):
            qa.search("   ")
        qa.delete("otters")
    finally:
        events.stop_listening(broken)
        events.stop_listening(seen.append)
    writes = [e for e in seen if isinstance(e, events.IndexWrite)]
    queries = [e for e in seen if isinstance(e, events.Query)]
    assert [(w.operation, w.ok, dict(w.articles)) for w in writes] == [
        ("ingest", True, {"added": 1}),
        ("delete", True, {"deleted": 1}),
    ]
    assert [(q.operation, q.ok, q.abstained) for q in queries] == [("ask", True, False), ("search", False, None)]
