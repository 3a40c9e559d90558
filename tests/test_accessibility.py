"""WCAG 2.2 AA checks with axe-core (axe-playwright-python) on every page a reader sees, light and dark."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from browsing import ANSWER_TIMEOUT_MS, ask, require_browser, shot

pytestmark = pytest.mark.browser
require_browser()

from axe_playwright_python.sync_playwright import Axe  # noqa: E402  (after the skip checks on purpose)
from playwright.sync_api import Browser, Page, expect  # noqa: E402

# Every rule axe runs by default (WCAG 2.0-2.2 A and AA, and its best practices), plus the 2.2 AA target size.
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"], "rules": {"target-size": {"enabled": True}}}
SCHEMES = ["light", "dark"]


def _violations(page: Page) -> str:
    """axe's report of the page's violations; empty when there are none."""
    results = Axe().run(page, options=AXE_OPTIONS)
    return results.generate_report() if results.violations_count else ""


@pytest.fixture(params=SCHEMES)
def scheme_page(request: pytest.FixtureRequest, browser: Browser) -> Any:
    context = browser.new_context(viewport={"width": 1000, "height": 800}, color_scheme=request.param)
    page = context.new_page()
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    yield page
    context.close()


def test_empty_chat_page(scheme_page: Page, base_url: str) -> None:
    scheme_page.goto(base_url + "/")
    expect(scheme_page.locator("a.example").first).to_be_visible()
    assert _violations(scheme_page) == ""


def test_chat_page_with_a_thread(scheme_page: Page, base_url: str) -> None:
    page = scheme_page
    page.goto(base_url + "/")
    ask(page, "What does Nurly Zhol mean?")
    ask(page, "What is the recipe for chocolate cake?")  # the "No answer" label
    page.locator(".more summary").first.click()  # the passage and its highlight
    page.locator("#threads summary").click()  # the list of earlier chats
    page.locator("#question").fill("x" * 2100)  # the over-limit counter
    expect(page.locator("#question-status")).to_contain_text("over the limit")
    assert _violations(page) == ""
    page.route("**/api/ask", lambda route: route.fulfill(status=503, json={"error": "busy", "status": 503}))
    page.locator("#question").fill("")
    ask(page, "Who joined the SCO?")  # an error with Retry
    expect(page.locator(".reply.error")).to_have_count(1)
    page.locator("#question").focus()
    shot(page, f"accessibility-chat-{page.evaluate('matchMedia(`(prefers-color-scheme: dark)`).matches')}.png")
    assert _violations(page) == ""


def test_article_view(scheme_page: Page, base_url: str) -> None:
    text: str = httpx.get(base_url + "/api/articles/kazakhstan-china-new-silk-road.txt").json()["text"]
    start = text.index("Kazakhstani infrastructure")
    scheme_page.goto(f"{base_url}/articles/kazakhstan-china-new-silk-road.txt?start={start}&end={start + 60}#cited")
    expect(scheme_page.locator("mark#cited")).to_be_focused()
    assert _violations(scheme_page) == ""


def test_article_list(scheme_page: Page, base_url: str) -> None:
    scheme_page.goto(base_url + "/articles")
    expect(scheme_page.locator("h1")).to_have_text("Articles")
    assert _violations(scheme_page) == ""


def test_error_page(scheme_page: Page, base_url: str) -> None:
    scheme_page.goto(base_url + "/articles/no-such-article")
    expect(scheme_page.locator("h1")).to_contain_text("404")
    assert _violations(scheme_page) == ""
