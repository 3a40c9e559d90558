"""The HTML pages through TestClient: chat page, static files, article view, escaping and the error page."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from qa import QA
from qa.server.app import create_app

# The same values as tests/conftest.py; not imported, so that mypy checks this file on its own.
SAMPLE_ID = "kazakhstan-china-new-silk-road.txt"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
CITED = "Nurly Zhol, meaning \u201clighted path,\u201d"
SAMPLE_TITLE = 'Kazakhstan, China To Cooperate In "New Silk Road" Global Trade Expansion'


def test_chat_page_has_form_and_external_script_only(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert '<form id="ask-form"' in body
    textarea = re.search(r"<textarea id=\"question\"[^>]*>", body)
    assert textarea and 'name="q"' in textarea.group(0)
    assert "maxlength" not in textarea.group(0), "an over-long question is refused with a message, never cut"
    assert '<ol id="log"' in body
    assert "<noscript>" in body
    assert '<link rel="stylesheet" href="/static/style.css">' in body
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", body, flags=re.S)
    assert scripts == [""], "only the one external script, no inline code"
    assert re.search(r'<script type="module" src="/static/chat.js"></script>', body)
    assert not re.search(r"\sstyle=", body), "no inline style attributes"
    assert not re.search(r"\son[a-z]+=", body), "no inline event handlers"
    assert re.search(r"1 article\b", body) and "passages" in body
    assert 'href="/docs"' in body and 'href="/articles"' in body
    assert len(re.findall(r"<h1\b", body)) == 1
    assert re.search(r'<a class="skip-link" href="#question">', body)
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_chat_page_limits_come_from_the_settings(sample_qa: QA) -> None:
    sample_qa.settings = sample_qa.settings.model_copy(
        update={"max_question_chars": 123, "max_history_turns": 4, "max_history_chars": 5678}
    )
    with TestClient(create_app(sample_qa)) as client:
        body = client.get("/").text
        assert 'data-max-question-chars="123"' in body
        assert 'data-max-history-turns="4"' in body
        assert 'data-max-history-chars="5678"' in body
        for script in ("chat.js", "thread.js", "render.js"):
            assert not re.search(r"\b(2000|20000|2_000|20_000)\b", client.get(f"/static/{script}").text), script


def test_chat_page_offers_example_questions_from_the_newest_titles(client: TestClient, auth: dict[str, str]) -> None:
    body = client.get("/").text
    assert "Tell me about Kazakhstan, China To Cooperate In &#34;New Silk Road&#34; Global Trade Expansion<" in body
    hostile = {"id": "x/new", "title": f"Otters {SCRIPT}", "text": "Otters float.", "published": "2030-01-01"}
    assert client.post("/api/articles", json=hostile, headers=auth).status_code == 201
    body = client.get("/").text
    examples = re.findall(r'<a class="example" href="([^"]*)">(.*?)</a>', body)
    assert html.unescape(examples[0][1]) == f"Tell me about Otters {SCRIPT}"
    assert SCRIPT not in body
    href = html.unescape(examples[0][0])
    assert href.startswith("/?q=Tell%20me%20about%20Otters%20") and "<" not in href


def test_static_files_are_served(client: TestClient) -> None:
    assert "/api/ask" in client.get("/static/chat.js").text
    for script in ("chat.js", "thread.js", "render.js", "article.js"):
        js = client.get(f"/static/{script}")
        assert js.status_code == 200
        assert "javascript" in js.headers["content-type"]
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert forbidden not in js.text, script
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
    match = re.search(r'<mark id="cited" tabindex="-1">(.*?)</mark>', body, flags=re.S)
    assert match is not None
    assert html.unescape(match.group(1)) == CITED
    assert body.count("<mark") == 1
    assert '<mark id="cited" tabindex="-1">' in body  # article.js moves the focus there
    assert '<script src="/static/article.js" defer></script>' in body
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
    assert "<script" not in response.text
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
    assert f'<mark id="cited" tabindex="-1">{html.escape(SCRIPT)}</mark>' in body
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


def _wire(number: int) -> dict[str, str]:
    return {
        "id": f"wire/{number:03d} story?#",
        "title": f"Wire story {number} {IMG}",
        "text": f"Story number {number} of the wire.",
        "published": f"2024-01-{number:02d}",
    }


def test_article_list_is_paged_newest_first_without_javascript(client: TestClient, auth: dict[str, str]) -> None:
    for number in range(1, 31):
        assert client.post("/api/articles", json=_wire(number), headers=auth).status_code == 201
    first = client.get("/articles")
    assert first.status_code == 200
    body = first.text
    assert "<script" not in body
    assert len(re.findall(r"<h1\b", body)) == 1
    links = re.findall(r'<a class="article-link" href="([^"]*)">(.*?)</a>', body)
    assert len(links) == 25
    assert html.unescape(links[0][1]) == f"Wire story 30 {IMG}" and IMG not in body  # newest first, escaped
    assert links[0][0] == "/articles/wire/030%20story%3F%23"
    assert client.get(links[0][0]).status_code == 200  # the link opens that article
    assert 'rel="next" href="/articles?page=2"' in body and 'rel="prev"' not in body
    assert "31 articles indexed" in body and "Page 1 of 2" in body
    second = client.get("/articles", params={"page": 2}).text
    titles = [html.unescape(t) for _, t in re.findall(r'<a class="article-link" href="([^"]*)">(.*?)</a>', second)]
    assert titles == [f"Wire story {n} {IMG}" for n in range(5, 0, -1)] + [SAMPLE_TITLE]
    assert 'rel="prev" href="/articles?page=1"' in second and 'rel="next"' not in second
    assert '<ol class="articles" start="26">' in second


def test_article_list_pages_out_of_range(client: TestClient) -> None:
    beyond = client.get("/articles", params={"page": 2})
    assert beyond.status_code == 404 and beyond.headers["content-type"].startswith("text/html")
    assert "there is no page 2" in beyond.text
    assert client.get("/articles", params={"page": 0}).status_code == 422
    assert client.get("/articles", params={"page": "x"}).status_code == 422
    assert client.get("/articles", params={"page": 10**12}).status_code == 422
    moved = client.get("/articles/", follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == "/articles"
