"""WCAG 2.2 AA checks with axe-core (axe-playwright-python) on every page a reader sees, light and dark."""

from __future__ import annotations

from collections.abc import Iterator
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
def scheme_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A page in a fresh context whose browser prefers the light or the dark colour scheme."""
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


def test_chat_page_with_filters(scheme_page: Page, base_url: str) -> None:
    """The filter row set (dates, a source picked from GET /api/sources), and an answer searched with it."""
    page = scheme_page
    page.goto(base_url + "/")
    expect(page.locator("#filter-source optgroup option")).to_have_count(1)
    page.locator("#filter-since").fill("2017-01-01")
    page.locator("#filter-until").fill("2024-12-31")
    page.locator("#filter-source").select_option("corpus")
    expect(page.locator("#filter-clear")).to_be_visible()
    ask(page, "What does Nurly Zhol mean?")
    expect(page.locator(".turn-filters")).to_have_count(1)
    expect(page.locator(".source-date")).to_have_count(1)
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
    scheme_page.goto(base_url + "/articles?since=2030-01-01&source=corpus")  # filtered, and nothing matches
    expect(scheme_page.locator(".empty-list")).to_be_visible()
    assert _violations(scheme_page) == ""


def test_error_page(scheme_page: Page, base_url: str) -> None:
    scheme_page.goto(base_url + "/articles/no-such-article")
    expect(scheme_page.locator("h1")).to_contain_text("404")
    assert _violations(scheme_page) == ""


FOCUS_STYLE = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    let behind = el.parentElement, background = 'rgba(0, 0, 0, 0)';
    while (behind) {
        background = getComputedStyle(behind).backgroundColor;
        if (!/rgba\\(.*, 0\\)$/.test(background)) break;
        behind = behind.parentElement;
    }
    return {tag: el.tagName + '.' + el.className, outline: style.outlineStyle, width: style.outlineWidth,
            color: style.outlineColor, background};
}"""


def _luminance(css: str) -> float:
    channels = [int(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_is_computed_as_wcag_defines_it() -> None:
    assert round(contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 1) == 21.0
    assert round(contrast("rgb(185, 167, 122)", "rgb(243, 240, 232)"), 1) == 2.1  # the old "No answer" label


def test_every_focus_ring_is_3px_at_3_to_1(scheme_page: Page, base_url: str) -> None:
    page = scheme_page
    page.goto(base_url + "/")
    ask(page, "What does Nurly Zhol mean?")
    page.get_by_role("button", name="New chat").click()  # the empty state's example links, and a thread list
    page.locator("#threads summary").click()
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("body").focus()
    seen: dict[str, dict[str, str]] = {}
    for _ in range(40):
        page.keyboard.press("Tab")
        style = page.evaluate(FOCUS_STYLE)
        seen.setdefault(style["tag"], style)
    page.locator(".open-thread").first.click()
    page.locator(".more summary").first.focus()
    for _ in range(24):  # past the question bar and its filter row, round to the answer
        page.keyboard.press("Tab")
        style = page.evaluate(FOCUS_STYLE)
        seen.setdefault(style["tag"], style)
    tags = " ".join(seen)
    for wanted in ("skip-link", "new-chat", "A.example", "open-thread", "delete-thread", "TEXTAREA", "cite", "copy"):
        assert wanted in tags, tags
    for tag, style in seen.items():
        if tag.startswith("BODY"):
            continue
        assert style["outline"] != "none" and float(style["width"].removesuffix("px")) >= 3, (tag, style)
        assert contrast(style["color"], style["background"]) >= 3, (tag, style)
