"""The access log: one line per request with its id, method, route template, status and duration, as text or
JSON (QA_LOG_FORMAT); the request id comes back in X-Request-ID."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from fixtures import SAMPLE_ID
from qa import QA
from qa.server.app import create_app
from qa.settings import Settings


def _client(sample_qa: QA, settings: Settings, **overrides: object) -> TestClient:
    return TestClient(create_app(QA(settings.model_copy(update=overrides), sample_qa.embedder)))


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "request_id" in line]


def test_every_request_gets_an_id_and_a_text_line(
    sample_qa: QA, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with _client(sample_qa, settings) as client:
        capsys.readouterr()
        given = client.get(f"/api/articles/{SAMPLE_ID}", headers={"X-Request-ID": "trace-42.a:b"})
        made = client.get("/api/search", params={"q": "secret question about oil"})
        forged = client.get("/healthz", headers={"X-Request-ID": "x status=500 injected"})
        client.get("/no/such/page")
    assert given.headers["X-Request-ID"] == "trace-42.a:b"
    assert len(made.headers["X-Request-ID"]) == 32  # a new uuid4, hex
    assert forged.headers["X-Request-ID"] != "x status=500 injected"  # not a plain token: replaced
    lines = _lines(capsys)
    assert len(lines) == 4, lines
    article, search, health, unmatched = (dict(field.split("=", 1) for field in line.split(" ")) for line in lines)
    assert article["request_id"] == "trace-42.a:b" and article["method"] == "GET"
    assert article["route"] == "/api/articles/{article_id:path}" and article["status"] == "200"
    assert float(article["duration_ms"]) > 0 and article["client"] == "testclient"
    assert search["request_id"] == made.headers["X-Request-ID"] and search["route"] == "/api/search"
    assert "secret" not in lines[1] and SAMPLE_ID not in lines[0]  # neither questions nor ids reach the log
    assert health["request_id"] == forged.headers["X-Request-ID"] and "injected" not in lines[2]
    assert unmatched["route"] == "unmatched" and unmatched["status"] == "404"


def test_json_lines_with_qa_log_format_json(
    sample_qa: QA, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with _client(sample_qa, settings, log_format="json") as client:
        capsys.readouterr()
        client.post("/api/ask", json={"question": "x" * 3000})
        client.get("/static/chat.js")
    records = [json.loads(line) for line in _lines(capsys)]
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("POST", "/api/ask", 422),
        ("GET", "/static/{path}", 200),
    ]
    assert set(records[0]) == {"time", "request_id", "method", "route", "status", "duration_ms", "client"}
    assert records[0]["time"].endswith("Z") and isinstance(records[0]["duration_ms"], float)


def test_qa_log_format_is_text_or_json() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")


def test_an_unexpected_error_keeps_its_request_id(
    sample_qa: QA, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = QA(settings, sample_qa.embedder)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(broken, "search", fail)
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        capsys.readouterr()
        response = client.get("/api/search", params={"q": "oil"}, headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "bug-1"
    err = capsys.readouterr().err
    assert "request_id=bug-1 method=GET route=/api/search status=500" in err
