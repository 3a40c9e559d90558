"""The HTML pages through TestClient: chat page, static files, article view, escaping and the error page."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

# The same values as tests/conftest.py; not imported, so that mypy checks this file on its own.
SAMPLE_ID = "kazakhstan-china-new-silk-road.txt"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CITED = "Nurly Zhol, meaning \u201clighted path,\u201d"


def test_chat_page_has_form_and_external_script_only(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert '<form id="ask-form"' in body
    assert re.search(r'<textarea id="question"[^>]*maxlength="2000"', body)
    assert '<ol id="log"' in body
    assert "<noscript>" in body
    assert '<link rel="stylesheet" href="/static/style.css">' in body
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", body, flags=re.S)
    assert scripts == [""], "only the one external script, no inline code"
    assert re.search(r'<script src="/static/chat.js" defer></script>', body)
    assert not re.search(r"\sstyle=", body), "no inline style attributes"
    assert not re.search(r"\son[a-z]+=", body), "no inline event handlers"
    assert re.search(r"1 article\b", body) and "passages" in body
    assert 'href="/docs"' in body
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_static_files_are_served(client: TestClient) -> None:
    js = client.get("/static/chat.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert "/api/ask" in js.text
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in js.text
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".source" in css.text and "mark" in css.text


def test_article_view_marks_the_cited_span(client: TestClient) -> None:
    article = client.get(f"/api/articles/{SAMPLE_ID}").json()
    text: str = article["text"]
    start = text.index(CITED)
    end = start + len(CITED)
    response = client.get(f"/articles/{SAMPLE_ID}", params={"start": start, "end": end})
    assert response.status_code == 200
    body = response.text
    match = re.search(r'<mark id="cited">(.*?)</mark>', body, flags=re.S)
    assert match is not None
    assert html.unescape(match.group(1)) == CITED
    assert body.count("<mark") == 1
    assert f"<h1>{article['title']}</h1>" in html.unescape(body)
    assert 'href="/"' in body
    # The text around the mark is the article's own text.
    unescaped = html.unescape(re.sub(r"</?mark[^>]*>", "", body))
    assert text[max(0, start - 200) : end + 200] in unescaped
    assert text[:100] in unescaped


def test_article_view_without_span_has_no_mark(client: TestClient) -> None:
    response = client.get(f"/articles/{SAMPLE_ID}")
    assert response.status_code == 200
    assert "<mark" not in response.text
    assert 'class="article-text"' in response.text


def test_hostile_article_is_escaped(client: TestClient, auth: dict[str, str]) -> None:
    hostile = {
        "id": "example.com/news/hostile-story",
        "title": f"Title {SCRIPT} {IMG}",
        "text": f"The zebra crossing festival in Plovdiv opens in May. {SCRIPT} and {IMG} are text here.",
        "author": f"Mallory {IMG}",
        "url": "javascript:alert(1)",
    }
    created = client.post("/api/articles", json=hostile, headers=auth)
    assert created.status_code == 201, created.text
    text = client.get(f"/api/articles/{hostile['id']}").json()["text"]
    start = text.index(SCRIPT)
    response = client.get(f"/articles/{hostile['id']}", params={"start": start, "end": start + len(SCRIPT)})
    assert response.status_code == 200
    body = response.text
    assert SCRIPT not in body
    assert IMG not in body
    assert "onerror=alert" not in body.replace(html.escape(IMG), "")
    assert html.escape(SCRIPT) in body
    assert html.escape(IMG) in body
    assert f'<mark id="cited">{html.escape(SCRIPT)}</mark>' in body
    assert 'href="javascript:' not in body.lower()
    assert "javascript:alert(1)" not in body
    assert "Read the original" not in body


def test_http_url_gets_an_original_link(client: TestClient, auth: dict[str, str]) -> None:
    article = {
        "id": "example.com/news/a-story",
        "title": "A story",
        "text": "Plain text about a story.",
        "url": "https://example.com/news/a-story",
    }
    assert client.post("/api/articles", json=article, headers=auth).status_code == 201
    body = client.get("/articles/example.com/news/a-story").text
    assert re.search(r'<a href="https://example.com/news/a-story" rel="noopener noreferrer"', body)


def test_unknown_article_is_a_404_page(client: TestClient) -> None:
    response = client.get("/articles/no/such/article.txt")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404" in response.text
    assert 'href="/"' in response.text
    assert "<script" not in response.text
