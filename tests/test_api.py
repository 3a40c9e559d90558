"""The HTTP API through FastAPI's TestClient, on the real model and index."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from fixtures import SAMPLE_ID
from qa import QA
from qa.server.app import create_app
from qa.settings import Settings

# The whole API suite runs once per back end (the `backend` fixture in conftest.py).
pytestmark = pytest.mark.parametrize("backend", ["faiss", "postgres"], indirect=True)

CITATION_FIELDS = {
    "n",
    "article_id",
    "title",
    "url",
    "published",
    "passage",
    "start",
    "end",
    "highlight",
    "score",
    "source",
}


def test_ask_returns_an_answer_with_citations(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "What does Nurly Zhol mean?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"question", "query", "answer", "abstained", "confidence", "citations", "filters"}
    assert body["query"] == body["question"]  # a question asked alone is searched as it is
    assert body["filters"] is None  # none asked for, and the question names no time
    assert body["abstained"] is False and "lighted path" in body["answer"] and "[1]" in body["answer"]
    assert 0.5 <= body["confidence"] <= 1.0
    first = body["citations"][0]
    assert set(first) == CITATION_FIELDS
    article = client.get(f"/api/articles/{first['article_id']}").json()
    start, end = first["highlight"]
    assert "lighted path" in article["text"][start:end]
    assert article["text"][first["start"] : first["end"]] == first["passage"]


def test_ask_abstains_plainly(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": "What is the recipe for chocolate cake?"}).json()
    assert body["abstained"] is True and body["citations"] == []
    assert "not found in the articles" in body["answer"].lower()
    assert 0.0 <= body["confidence"] < client.app.state.qa.min_confidence  # type: ignore[attr-defined]


def test_search_returns_passages_without_numbers(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "oil reserves", "top_k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2
    assert set(results[0]) == CITATION_FIELDS - {"n"}
    assert "30 billion barrels" in results[0]["passage"]


def test_articles_list_and_detail(client: TestClient) -> None:
    page = client.get("/api/articles", params={"limit": 10}).json()
    assert page["total"] == 1 and page["offset"] == 0 and page["limit"] == 10
    assert page["articles"][0]["id"] == SAMPLE_ID and page["articles"][0]["passages"] > 3
    detail = client.get(f"/api/articles/{SAMPLE_ID}").json()
    assert detail["author"] == "Azamat Batyrov" and detail["published"] == "2017-06-11"
    assert detail["text"].startswith("On Thursday")


def test_healthz(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["articles"] == 1 and body["passages"] > 3


def test_posting_an_article_makes_it_answerable_at_once(client: TestClient, auth: dict[str, str]) -> None:
    article = {
        "id": "wire/otters",
        "title": "Otters of Monterey",
        "text": "Sea otters in Monterey Bay hold hands while sleeping so that they do not drift apart.",
        "url": "https://example.org/otters",
        "published": "2024-02-03",
    }
    response = client.post("/api/articles", json=article, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json() == {"articles": {"wire/otters": "added"}}
    answer = client.post("/api/ask", json={"question": "Why do sea otters hold hands?"}).json()
    assert answer["citations"][0]["article_id"] == "wire/otters"
    assert "drift apart" in answer["answer"]
    assert client.get("/api/articles/wire/otters").json()["url"] == "https://example.org/otters"
    again = client.post("/api/articles", json=article, headers=auth)
    assert again.json() == {"articles": {"wire/otters": "unchanged"}}


def test_uploading_a_file(client: TestClient, auth: dict[str, str]) -> None:
    files = {
        "file": (
            "harbour.md",
            b"# Harbour news\n\nThe harbour master retired after forty years.",
            "text/markdown",
        )
    }
    response = client.post("/api/articles", files=files, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json() == {"articles": {"harbour.md": "added"}}
    assert client.get("/api/articles/harbour.md").json()["title"] == "Harbour news"


def test_deleting_an_article(client: TestClient, auth: dict[str, str]) -> None:
    assert client.delete(f"/api/articles/{SAMPLE_ID}", headers=auth).json() == {"articles": {SAMPLE_ID: "deleted"}}
    assert client.get(f"/api/articles/{SAMPLE_ID}").status_code == 404
    assert client.post("/api/ask", json={"question": "What does Nurly Zhol mean?"}).json()["abstained"]
    assert client.delete(f"/api/articles/{SAMPLE_ID}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"json": {"question": ""}}, 422, "empty"),
        ({"json": {"question": "   "}}, 422, "empty"),
        ({"json": {"question": "x" * 2001}}, 422, "limit is 2000"),
        ({"json": {"question": "oil", "top_k": 0}}, 422, "top_k"),
        ({"json": {"question": "oil", "top_k": 51}}, 422, "top_k"),
        ({"json": {"question": 42}}, 422, "question"),
        ({"json": {}}, 422, "question"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ],
)
def test_bad_questions_get_a_clear_4xx(
    client: TestClient, request_kwargs: dict[str, object], status: int, message: str
) -> None:
    response = client.post("/api/ask", **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_bad_search_parameters(client: TestClient) -> None:
    assert client.get("/api/search").status_code == 422
    assert client.get("/api/search", params={"q": "oil", "top_k": 100}).status_code == 422
    assert client.get("/api/search", params={"q": "x" * 5000}).status_code == 422
    assert client.get("/api/articles", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "NEAR(a b)",
        "a AND OR NOT",
        "*",
        "(",
        "名古屋 的 石油",
        "col:val",
        "'); DROP TABLE x;--",
    ],
)
def test_any_query_text_is_safe_for_the_lexical_leg(client: TestClient, query: str) -> None:
    assert client.get("/api/search", params={"q": query}).status_code == 200
    assert client.post("/api/ask", json={"question": query}).status_code == 200


def test_unknown_article_is_404(client: TestClient) -> None:
    response = client.get("/api/articles/no/such/article")
    assert response.status_code == 404
    assert response.json()["error"] == "no article with id 'no/such/article'"


def test_writes_need_the_key(client: TestClient) -> None:
    article = {"id": "x", "text": "Some text."}
    assert client.post("/api/articles", json=article).status_code == 401
    assert client.post("/api/articles", json=article, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.delete(f"/api/articles/{SAMPLE_ID}").status_code == 401
    assert client.get(f"/api/articles/{SAMPLE_ID}").status_code == 200


def test_writes_are_refused_when_no_key_is_configured(sample_qa: QA, settings: Settings) -> None:
    keyless = QA(settings.model_copy(update={"api_key": None}), sample_qa.embedder)
    with TestClient(create_app(keyless)) as client:
        response = client.post("/api/articles", json={"id": "x", "text": "t"}, headers={"Authorization": "Bearer "})
        assert response.status_code == 403
        assert "QA_API_KEY" in response.json()["error"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {"id": "x", "text": ""}}, "text"),
        ({"json": {"title": "no id", "text": "t"}}, "'id' or a 'url'"),
        ({"json": ["not", "an", "object"]}, "JSON object"),
        ({"files": {"file": ("photo.png", b"\x89PNG", "image/png")}}, "unsupported file type"),
        ({"files": {"file": ("empty.txt", b"", "text/plain")}}, "empty"),
        ({"files": {"file": ("bad.json", b"{", "application/json")}}, "invalid JSON"),
        ({"files": {"other": ("a.txt", b"T\n\nbody", "text/plain")}}, "'file'"),
    ],
)
def test_bad_articles_get_a_clear_4xx(
    client: TestClient, auth: dict[str, str], kwargs: dict[str, object], message: str
) -> None:
    response = client.post("/api/articles", headers=auth, **kwargs)  # type: ignore[arg-type]
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["error"]


def test_oversized_uploads_are_413(sample_qa: QA, settings: Settings, auth: dict[str, str]) -> None:
    small = QA(settings.model_copy(update={"max_upload_bytes": 1000}), sample_qa.embedder)
    with TestClient(create_app(small)) as client:
        big_json = {"id": "big", "text": "word " * 1000}
        assert client.post("/api/articles", json=big_json, headers=auth).status_code == 413
        files = {"file": ("big.txt", b"T\n\n" + b"word " * 1000, "text/plain")}
        response = client.post("/api/articles", files=files, headers=auth)
        assert response.status_code == 413
        assert "limit" in response.json()["error"]


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/ask", "/api/search", "/api/articles", "/api/articles/{article_id}", "/healthz"} <= set(paths)
    assert {"get", "post"} <= set(paths["/api/articles"])
    assert "multipart/form-data" in paths["/api/articles"]["post"]["requestBody"]["content"]
    assert json.dumps(schema)  # serialisable


def test_the_api_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-static/swagger-ui.css").status_code == 200


def test_huge_page_offsets_are_422_not_500(client: TestClient) -> None:
    response = client.get("/api/articles", params={"offset": 2**63})
    assert response.status_code == 422, response.text
    assert client.get("/api/articles", params={"offset": 10**9}).json()["articles"] == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/ask", b'{"question": "oil \\ud800 reserves"}', "lone surrogate"),
        ("/api/articles", b'{"id": "x", "text": "Oil \\udc00 reserves."}', "lone surrogate"),
        ("/api/articles", b'{"id": "x\\ud800", "text": "Oil reserves."}', "unusable article id"),
        ("/api/articles", b'{"id": "a\\u202eb", "text": "Oil reserves."}', "unusable article id"),
    ],
)
def test_text_that_is_not_unicode_is_422_not_500(
    client: TestClient, auth: dict[str, str], path: str, body: bytes, message: str
) -> None:
    """JSON can spell lone surrogates (found while fuzzing); no tokenizer or database takes them."""
    response = client.post(path, content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
