"""Abuse limits: rate limit, body and upload caps (with and without Content-Length), multipart parts,
articles per upload, HTTP methods, CORS and the CSP on /docs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa import QA
from qa.server.app import create_app
from qa.server.limits import MULTIPART_ALLOWANCE, TokenBucket
from qa.settings import Settings


def _client(sample_qa: QA, settings: Settings, **overrides: Any) -> TestClient:
    """A TestClient over the sample index with some settings changed."""
    changed = QA(settings.model_copy(update=overrides), sample_qa.embedder)
    return TestClient(create_app(changed), raise_server_exceptions=False)


# -- rate limit ------------------------------------------------------------------------------------------


def test_asking_too_fast_gets_429_with_retry_after(sample_qa: QA, settings: Settings) -> None:
    with _client(sample_qa, settings, rate_limit=0.01, rate_burst=3) as client:
        for _ in range(3):
            assert client.get("/api/search", params={"q": "oil", "top_k": 1}).status_code == 200
        limited = client.post("/api/ask", json={"question": "How large are the oil reserves?"})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["status"] == 429 and "too many requests" in limited.json()["error"]
        assert client.get("/api/search", params={"q": "oil"}).status_code == 429
        # Only questions and searches are limited.
        assert client.get("/api/articles").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_api_key_holder_is_not_rate_limited(sample_qa: QA, settings: Settings, auth: dict[str, str]) -> None:
    with _client(sample_qa, settings, rate_limit=0.01, rate_burst=1) as client:
        for _ in range(4):
            assert client.get("/api/search", params={"q": "oil", "top_k": 1}, headers=auth).status_code == 200
        wrong = {"Authorization": "Bearer not-the-key"}
        assert client.get("/api/search", params={"q": "oil", "top_k": 1}, headers=wrong).status_code == 200
        assert client.get("/api/search", params={"q": "oil", "top_k": 1}, headers=wrong).status_code == 429


def test_rate_limit_can_be_switched_off(sample_qa: QA, settings: Settings) -> None:
    with _client(sample_qa, settings, rate_limit=0, rate_burst=1) as client:
        for _ in range(5):
            assert client.get("/api/search", params={"q": "oil", "top_k": 1}).status_code == 200


def test_token_bucket_is_per_client_and_refills() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0])
    assert bucket.take("a") == 0 and bucket.take("a") == 0
    assert bucket.take("a") == pytest.approx(0.5)
    assert bucket.take("b") == 0  # another client has its own bucket
    now[0] += 0.5
    assert bucket.take("a") == 0
    assert bucket.take("a") > 0


def test_token_bucket_forgets_idle_clients() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=1, clock=lambda: now[0], max_clients=10)
    for i in range(10):
        bucket.take(f"10.0.0.{i}")
    now[0] += 5  # every bucket has refilled
    bucket.take("late")
    assert len(bucket._buckets) <= 2


# -- body and upload size ----------------------------------------------------------------------------


def _chunks(prefix: bytes, chunk: bytes, count: int) -> Iterator[bytes]:
    yield prefix
    for _ in range(count):
        yield chunk


def test_streamed_json_body_without_length_is_cut_off(sample_qa: QA, settings: Settings, auth: dict[str, str]) -> None:
    with _client(sample_qa, settings, max_upload_bytes=1000) as client:
        body = _chunks(b'{"question": "', b"x" * 4096, 100)
        response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        assert "limit" in response.json()["error"]
        body = _chunks(b'{"id": "big", "text": "', b"word " * 1000, 100)
        response = client.post("/api/articles", content=body, headers={**auth, "content-type": "application/json"})
        assert response.status_code == 413, response.text


def _asgi_post(app: Any, path: str, headers: dict[str, str], parts: Iterator[bytes]) -> tuple[int, int, bytes]:
    """Drive the ASGI app directly; returns (status, bytes the app pulled from the body, response body)."""
    pulled = 0
    status = 0
    sent = b""

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        part = next(parts, None)
        if part is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(part)
        return {"type": "http.request", "body": part, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, sent
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            sent += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return status, pulled, sent


def test_streamed_upload_stops_being_read_at_the_limit(sample_qa: QA, settings: Settings, auth: dict[str, str]) -> None:
    """A multipart upload with no Content-Length: the app reads only up to the limit, never the whole stream."""
    limit = 10_000
    app = create_app(QA(settings.model_copy(update={"max_upload_bytes": limit}), sample_qa.embedder))
    prelude = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
    )
    chunk = b"word " * 800  # 4 kB
    endless = _chunks(prelude, chunk, 1_000_000)  # 4 GB if it were all read
    headers = {**auth, "content-type": "multipart/form-data; boundary=b"}
    status, pulled, body = _asgi_post(app, "/api/articles", headers, endless)
    assert status == 413, body
    assert pulled <= limit + MULTIPART_ALLOWANCE + len(chunk)
    assert json.loads(body)["status"] == 413


def test_declared_oversized_body_is_refused_before_reading(sample_qa: QA, settings: Settings) -> None:
    app = create_app(QA(settings.model_copy(update={"max_upload_bytes": 1000}), sample_qa.embedder))
    headers = {"content-type": "application/json", "content-length": str(10**9)}
    status, pulled, body = _asgi_post(app, "/api/ask", headers, iter([b"{}"]))
    assert status == 413 and pulled == 0
    assert "limit" in json.loads(body)["error"]


def test_multipart_allows_one_file_and_few_fields(client: TestClient, auth: dict[str, str]) -> None:
    two_files = [
        ("file", ("a.txt", b"A\n\nOne.", "text/plain")),
        ("file", ("b.txt", b"B\n\nTwo.", "text/plain")),
    ]
    response = client.post("/api/articles", files=two_files, headers=auth)
    assert response.status_code == 400 and "files" in response.json()["error"].lower()
    fields = {f"f{i}": "x" for i in range(20)}
    response = client.post(
        "/api/articles", data=fields, files={"file": ("a.txt", b"A\n\nOne.", "text/plain")}, headers=auth
    )
    assert response.status_code == 400 and "fields" in response.json()["error"].lower()


def test_an_upload_may_hold_only_so_many_articles(sample_qa: QA, settings: Settings, auth: dict[str, str]) -> None:
    lines = "\n".join(json.dumps({"id": f"a{i}", "text": f"Article number {i} is here."}) for i in range(3))
    with _client(sample_qa, settings, max_articles_per_request=2) as client:
        files = {"file": ("batch.jsonl", lines.encode(), "application/jsonl")}
        response = client.post("/api/articles", files=files, headers=auth)
        assert response.status_code == 413
        assert "3 articles" in response.json()["error"]
        assert client.get("/api/articles/a0").status_code == 404


# -- methods ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "CONNECT", "OPTIONS", "PROPFIND"])
@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/", "GET"),
        ("/api/ask", "POST"),
        ("/api/articles", "GET, POST"),
        ("/api/articles/x", "DELETE, GET"),
        ("/static/chat.js", "GET, HEAD"),
    ],
)
def test_only_the_methods_in_use_are_allowed(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, (method, path, response.status_code)
    assert response.headers["allow"] == allow


def test_wrong_method_on_a_route_is_405(client: TestClient) -> None:
    assert client.get("/api/ask").status_code == 405
    assert client.delete("/api/search").status_code == 405
    assert client.request("TRACE", "/no/such/page").status_code == 404


# -- CORS ------------------------------------------------------------------------------------------------


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "oil"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_exactly_the_listed_origins(sample_qa: QA, settings: Settings) -> None:
    allowed = "https://news.example"
    with _client(sample_qa, settings, cors_origins=[allowed]) as client:
        preflight = client.options(
            "/api/ask",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == allowed
        response = client.get("/api/search", params={"q": "oil"}, headers={"Origin": allowed})
        assert response.headers["access-control-allow-origin"] == allowed
        other = client.options(
            "/api/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        response = client.get("/api/search", params={"q": "oil"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers


def test_cors_origins_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


# -- headers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/docs", "/api/articles", "/static/chat.js", "/no/such/page"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_docs_page_has_no_inline_script(client: TestClient) -> None:
    html = client.get("/docs").text
    scripts = html.count("<script")
    assert scripts == html.count("<script src=") == 2
    assert client.get("/static/docs.js").status_code == 200
