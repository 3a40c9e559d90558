"""The chat page in a real headless Chromium against a real uvicorn server over the sample index."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from qa import QA
from qa.server.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import (  # noqa: E402  (after the skip checks on purpose)
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT = 30.0
ANSWER_TIMEOUT_MS = 30_000

SCRIPT = "<script>alert('xss-script')</script>"
IMG = "<img src=x onerror=alert('xss-img')>"
JS_URL = "javascript:alert('xss-url')"
DATA_URL = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="


@dataclass
class Watch:
    """What a page did that it should not: dialogs, requests off the test server, console errors."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"dialogs fired: {self.dialogs}"
        assert self.foreign == [], f"requests left the test server: {self.foreign}"
        assert self.errors == [], f"console errors (CSP violations?): {self.errors}"


def _serve(app: FastAPI) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started")
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {SERVER_START_TIMEOUT}s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def base_url(sample_qa: QA) -> Iterator[str]:
    """A live server over the sample index, on a free local port."""
    yield from _serve(create_app(sample_qa))


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def watch(base_url: str) -> Watch:
    return Watch(origin=base_url)


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    watch.attach(page)
    yield page
    context.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _ask(page: Page, question: str) -> None:
    box = page.locator("#question")
    box.fill(question)
    box.press("Enter")
    expect(page.locator(".message.user .bubble").last).to_have_text(question)
    expect(page.locator(".message.pending")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#ask-form button[type=submit]")).to_be_enabled()


def _links(page: Page) -> list[str]:
    values: list[str] = page.eval_on_selector_all(
        "[href], [src], [action], [formaction]",
        """els => els.flatMap(e => ['href', 'src', 'action', 'formaction']
                 .map(a => e.getAttribute(a)).filter(v => v !== null))""",
    )
    return values


def _assert_no_script_urls(page: Page) -> None:
    for value in _links(page):
        lowered = re.sub(r"[\s\x00-\x1f]", "", value).lower()
        assert not lowered.startswith(("javascript:", "data:", "vbscript:")), value


def test_answer_with_citation_opens_the_cited_span(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#stats")).to_contain_text("1 article")
    expect(page.locator("#question")).to_be_focused()
    _ask(page, "What does Nurly Zhol mean?")

    answer = page.locator(".message.answer:not(.intro)").last
    expect(answer).not_to_have_class(re.compile(r"\babstained\b"))
    expect(answer.locator(".answer-text")).to_contain_text("lighted path")
    sources = answer.locator(".source")
    expect(sources.first).to_be_visible()
    expect(sources.first.locator(".source-n")).to_have_text("[1]")
    expect(sources.first.locator(".source-date")).to_have_text("2017-06-11")
    expect(sources.first.locator("mark").first).to_contain_text("lighted path")
    expect(sources.first.locator("a.open-article")).to_have_attribute("href", re.compile(r"#cited$"))
    # The sample article has no URL, so no link to an original.
    expect(answer.locator("a.original")).to_have_count(0)
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator("#question")).to_have_value("")
    _shot(page, "chat.png")

    cite = answer.locator("a.cite").first
    expect(cite).to_have_text("[1]")
    cite.click()
    expect(page).to_have_url(re.compile(r"/articles/kazakhstan-china-new-silk-road\.txt\?start=\d+&end=\d+#cited$"))
    mark = page.locator("mark#cited")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("lighted path")
    expect(mark).to_be_in_viewport()
    expect(page.locator("h1")).to_contain_text("New Silk Road")
    _shot(page, "article.png")
    watch.assert_clean()


def test_shift_enter_inserts_a_newline(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    box = page.locator("#question")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    expect(page.locator(".message.user")).to_have_count(0)
    watch.assert_clean()


def test_off_topic_question_abstains(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    _ask(page, "What is the recipe for chocolate cake?")
    answer = page.locator(".message.answer.abstained")
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("Not found in the articles.")
    expect(page.locator(".source")).to_have_count(0)
    expect(page.locator("a.cite")).to_have_count(0)
    _shot(page, "abstained.png")
    watch.assert_clean()


def test_api_error_shows_an_error_bubble(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    # Bypass the textarea's maxlength so that the server's own limit answers with a 4xx error.
    page.eval_on_selector("#question", "el => el.removeAttribute('maxlength')")
    _ask(page, "why " * 600)
    error = page.locator(".message.error")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("Error")
    expect(page.locator(".source")).to_have_count(0)
    # The 4xx response is logged by Chromium as a failed resource load; that is expected here.
    watch.errors = [e for e in watch.errors if "status of 4" not in e]
    watch.assert_clean()


def test_article_view_without_javascript(browser: Browser, base_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        expect(page.locator("#ask-form")).to_be_visible()
        expect(page.locator("noscript")).to_have_count(1)
        response = httpx.get(base_url + "/api/articles/kazakhstan-china-new-silk-road.txt")
        text: str = response.json()["text"]
        start = text.index("Kazakhstani infrastructure")
        end = text.index("routes.", start) + len("routes.")
        page.goto(f"{base_url}/articles/kazakhstan-china-new-silk-road.txt?start={start}&end={end}#cited")
        mark = page.locator("mark#cited")
        expect(mark).to_contain_text("lighted path")
        expect(mark).to_be_in_viewport()
    finally:
        context.close()


def test_hostile_article_stays_text(page: Page, base_url: str, watch: Watch, auth: dict[str, str]) -> None:
    hostile = [
        {
            "id": f"hostile/<b>one</b> {SCRIPT}",
            "title": f"Zebra crossings {SCRIPT} {IMG}",
            "text": (
                "The zebra crossing festival in Plovdiv is held every May, when volunteers repaint "
                f"the stripes of the old town. {IMG} Organisers of the zebra crossing festival in Plovdiv "
                f'say {SCRIPT} is painted on a banner. <a href="{JS_URL}">click</a>'
            ),
            "author": f"Mallory {IMG}",
            "published": f"{SCRIPT}",
            "url": JS_URL,
        },
        {
            "id": "hostile/two?x=1#frag",
            "title": f"Plovdiv festival {IMG}",
            "text": (
                "The zebra crossing festival in Plovdiv draws crowds to paint stripes every May. "
                f'<iframe src="{DATA_URL}"></iframe>'
            ),
            "author": SCRIPT,
            "url": DATA_URL,
        },
    ]
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as client:
        for article in hostile:
            response = client.post("/api/articles", json=article)
            assert response.status_code == 201, response.text

    page.goto(base_url + "/")
    _ask(page, "When is the zebra crossing festival in Plovdiv?")
    answer = page.locator(".message.answer:not(.intro)").last
    expect(answer).not_to_have_class(re.compile(r"\babstained\b"))
    expect(answer.locator(".answer-text")).to_contain_text("zebra crossing festival in Plovdiv")
    sources = answer.locator(".source")
    expect(sources.first).to_be_visible()
    titles = " ".join(sources.locator(".source-title").all_text_contents())
    assert SCRIPT in titles or IMG in titles, titles
    passages = " ".join(sources.locator(".passage").all_text_contents())
    assert IMG in passages or "<iframe" in passages, passages
    # No markup from the articles became elements, and no link points anywhere but http(s) or the app.
    expect(page.locator("script")).to_have_count(1)
    expect(page.locator("img, iframe, object, embed")).to_have_count(0)
    expect(page.locator("a.original")).to_have_count(0)
    _assert_no_script_urls(page)
    _shot(page, "hostile-chat.png")

    answer.locator("a.cite").first.click()
    mark = page.locator("mark#cited")
    expect(mark).to_be_visible()
    expect(page.locator("h1")).to_contain_text("<")
    expect(page.locator("script")).to_have_count(0)
    expect(page.locator("img, iframe, object, embed")).to_have_count(0)
    _assert_no_script_urls(page)
    assert page.get_by_text("Read the original").count() == 0
    _shot(page, "hostile-article.png")
    watch.assert_clean()


def test_api_docs_render_under_the_content_security_policy(page: Page, base_url: str, watch: Watch) -> None:
    response = page.goto(base_url + "/docs")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    expect(page.locator(".opblock-summary-path", has_text="/api/ask")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/search")).to_be_visible()
    _shot(page, "docs.png")
    watch.assert_clean()  # a CSP violation is a console error
