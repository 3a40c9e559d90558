"""The chat page in a real headless Chromium against a real uvicorn server over the sample index."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from browsing import ANSWER_TIMEOUT_MS, Watch, ask, require_browser, serve, shot
from qa import QA
from qa.answering.compose import NOT_FOUND
from qa.records import Turn
from qa.server.app import create_app

pytestmark = pytest.mark.browser
require_browser()

from playwright.sync_api import Browser, Page, Route, expect  # noqa: E402  (after the skip checks on purpose)

SCRIPT = "<script>alert('xss-script')</script>"
IMG = "<img src=x onerror=alert('xss-img')>"
JS_URL = "javascript:alert('xss-url')"
DATA_URL = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
SAMPLE_TITLE = 'Kazakhstan, China To Cooperate In "New Silk Road" Global Trade Expansion'

# Two festivals told alike: asked on its own, "How many visitors are expected?" is answered from Hoi An first;
# after a question about Plovdiv, the follow-up must be answered from Plovdiv.
PLOVDIV = {
    "id": "festivals/plovdiv-zebra",
    "title": "Plovdiv repaints its zebra crossings",
    "published": "2024-05-02",
    "url": "https://example.org/plovdiv-zebra",
    "text": (
        "The zebra crossing festival in Plovdiv is held every May, when volunteers repaint the stripes of the old "
        "town. The festival was founded in 1998 by the painter Ivan Petrov. "
        "This year the organisers expect 40,000 visitors."
    ),
}
HOI_AN = {
    "id": "festivals/hoi-an-lanterns",
    "title": "Hoi An switches off its lights",
    "published": "2024-04-20",
    "text": (
        "The lantern festival in Hoi An is held on every full moon, when residents float candles on the river. "
        "The festival was founded by the town council. This year the organisers expect 60,000 visitors."
    ),
}


def _add(base_url: str, auth: dict[str, str], *articles: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as client:
        for article in articles:
            response = client.post("/api/articles", json=article)
            assert response.status_code == 201, response.text


def _ask_bodies(page: Page) -> list[dict[str, Any]]:
    """Records the JSON body of every POST /api/ask the page sends (the list fills as it goes)."""
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            bodies.append(json.loads(request.post_data or "{}")) if request.url.endswith("/api/ask") else None
        ),
    )
    return bodies


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


def test_answer_with_citation_opens_the_cited_sentence(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#stats")).to_contain_text("1 article")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("#question")).to_be_focused()
    ask(page, "What does Nurly Zhol mean?")

    turn = page.locator(".turn").last
    expect(turn.locator(".question")).to_be_visible()
    reply = turn.locator(".reply")
    expect(reply).not_to_have_class(re.compile(r"\babstained\b"))
    expect(reply.locator(".answer-text")).to_contain_text("lighted path")
    # Only the cited sources, one card per article: the sample corpus is one article.
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator("#question")).to_have_value("")
    cards = reply.locator(".source")
    expect(cards).to_have_count(1)
    card = cards.first
    expect(card.locator(".source-n")).to_have_text(re.compile(r"^\[1\]"))
    expect(card.locator(".source-title")).to_have_text(SAMPLE_TITLE)
    expect(card.locator(".source-title")).to_have_attribute("href", re.compile(r"\?start=\d+&end=\d+#cited$"))
    expect(card.locator(".source-date")).to_have_text("2017-06-11")
    expect(card.locator(".cited-sentence").first).to_contain_text("lighted path")
    # The passage waits behind "More".
    passage = card.locator(".passage").first
    expect(passage).to_be_hidden()
    card.locator(".more summary").first.click()
    expect(passage).to_be_visible()
    expect(passage.locator("mark")).to_contain_text("lighted path")
    expect(reply.locator("a.original")).to_have_count(0)  # the sample article has no URL
    expect(reply.locator(".elapsed")).to_have_text(re.compile(r"^Took (< 0\.1|\d+(\.\d)?) s$"))
    expect(reply.locator(".confidence")).to_have_text("Confidence: likely")  # the learned scorer is sure of this one
    shot(page, "chat.png")

    cite = reply.locator("a.cite").first
    expect(cite).to_have_text("[1]")
    expect(cite).to_have_accessible_name(f"Source 1: {SAMPLE_TITLE}")
    cite.click()
    expect(page).to_have_url(re.compile(r"/articles/kazakhstan-china-new-silk-road\.txt\?start=\d+&end=\d+#cited$"))
    mark = page.locator("mark#cited")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("lighted path")
    expect(mark).to_be_in_viewport()
    expect(mark).to_be_focused()
    expect(page.locator("h1")).to_contain_text("New Silk Road")
    shot(page, "article.png")
    watch.assert_clean()


def test_shift_enter_inserts_a_newline(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    box = page.locator("#question")
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    expect(page.locator(".turn")).to_have_count(0)
    watch.assert_clean()


def test_off_topic_question_abstains(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    ask(page, "What is the recipe for chocolate cake?")
    reply = page.locator(".reply.abstained")
    expect(reply).to_have_count(1)
    expect(reply.locator(".abstain-label")).to_have_text("No answer")
    expect(reply.locator(".elapsed")).to_have_count(1)
    expect(reply.locator("button.copy")).to_have_count(0)  # nothing worth copying
    expect(reply).to_contain_text("Not found in the articles.")
    expect(page.locator(".source")).to_have_count(0)
    expect(page.locator("a.cite")).to_have_count(0)
    shot(page, "abstained.png")
    watch.assert_clean()


def test_followup_sends_history_and_is_answered_from_the_right_article(
    page: Page, base_url: str, watch: Watch, auth: dict[str, str]
) -> None:
    _add(base_url, auth, PLOVDIV, HOI_AN)
    bodies = _ask_bodies(page)
    page.goto(base_url + "/")
    first = "When is the zebra crossing festival in Plovdiv held?"
    ask(page, first)
    expect(page.locator(".turn").last.locator(".source-title")).to_have_text([PLOVDIV["title"]])
    first_answer = page.locator(".turn").last.locator(".answer-text").text_content()

    ask(page, "How many visitors are expected?")
    reply = page.locator(".turn").last.locator(".reply")
    expect(reply.locator(".answer-text")).to_contain_text("40,000")
    expect(reply.locator(".source-title").first).to_have_text(PLOVDIV["title"])
    assert bodies[0]["history"] == []
    assert bodies[1]["question"] == "How many visitors are expected?"
    assert bodies[1]["history"] == [
        {"question": first, "answer": first_answer, "article_ids": [PLOVDIV["id"]]},
    ]
    expect(page.locator(".turn .question")).to_have_count(2)  # both questions stay above their answers
    shot(page, "followup.png")

    # New chat: nothing of the thread is sent, and the same words are now answered from Hoi An.
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    ask(page, "How many visitors are expected?")
    assert bodies[2]["history"] == []
    expect(page.locator(".turn").last.locator(".source-title").first).to_have_text(HOI_AN["title"])
    watch.assert_clean()


def test_reload_and_the_back_link_keep_the_thread(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    ask(page, "What does Nurly Zhol mean?")
    ask(page, "Who joined the SCO?")
    expect(page.locator(".turn")).to_have_count(2)
    page.reload()
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn .question").first).to_contain_text("What does Nurly Zhol mean?")
    expect(page.locator(".turn").first.locator(".answer-text")).to_contain_text("lighted path")
    expect(page.locator("#empty")).to_be_hidden()
    page.set_viewport_size({"width": 1100, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "thread.png")  # docs/chat.png, the README's screenshot, is a copy

    # From the first answer's citation to the article view and back: the thread, and the focus on that link.
    page.locator(".turn").first.locator("a.cite").first.click()
    expect(page.locator("mark#cited")).to_be_focused()
    page.get_by_role("link", name="Back to the chat").first.click()
    expect(page).to_have_url(base_url + "/")
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn").first.locator("a.cite").first).to_be_focused()

    # A later question in the same thread sends both earlier turns.
    bodies = _ask_bodies(page)
    ask(page, "When was it founded?")
    assert [turn["question"] for turn in bodies[0]["history"]] == ["What does Nurly Zhol mean?", "Who joined the SCO?"]
    watch.assert_clean()


def test_linked_question_is_asked_on_load(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/?q=What%20does%20Nurly%20Zhol%20mean%3F")
    expect(page.locator(".turn")).to_have_count(1)
    expect(page.locator(".reply.pending")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".turn .answer-text")).to_contain_text("lighted path")
    expect(page).to_have_url(base_url + "/")  # so that a reload does not ask it again
    page.reload()
    expect(page.locator(".turn")).to_have_count(1)
    watch.assert_clean()


def test_earlier_threads_can_be_reopened_and_deleted(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#threads")).to_be_hidden()  # nothing stored yet
    ask(page, "What does Nurly Zhol mean?")
    page.get_by_role("button", name="New chat").click()
    ask(page, "Who joined the SCO?")
    threads = page.locator("#threads")
    threads.locator("summary").click()
    entries = page.locator("#thread-list .open-thread")
    expect(entries).to_have_text(["Who joined the SCO?", "What does Nurly Zhol mean?"])
    expect(entries.first).to_have_attribute("aria-current", "true")
    entries.nth(1).click()
    expect(page.locator(".turn")).to_have_count(1)
    expect(page.locator(".turn .question")).to_contain_text("What does Nurly Zhol mean?")
    page.reload()  # the reopened thread is the one this tab shows
    expect(page.locator(".turn .question")).to_contain_text("What does Nurly Zhol mean?")

    threads.locator("summary").click()
    page.get_by_role("button", name="Delete chat: What does Nurly Zhol mean?").click()
    expect(page.locator(".turn")).to_have_count(0)  # it was open: the page starts a new chat
    expect(entries).to_have_text(["Who joined the SCO?"])
    watch.assert_clean()


def test_error_keeps_the_question_and_retry_sends_it_again(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    ask(page, "What does Nurly Zhol mean?")
    bodies = _ask_bodies(page)
    failures = [1]

    def fail_once(route: Route) -> None:
        if failures:
            failures.pop()
            route.fulfill(status=503, json={"error": "the index is busy", "status": 503})
        else:
            route.continue_()

    page.route("**/api/ask", fail_once)
    ask(page, "Who joined the SCO?")
    turn = page.locator(".turn").last
    expect(turn.locator(".reply.error")).to_contain_text("Error: the index is busy")
    expect(turn.locator(".question")).to_contain_text("Who joined the SCO?")
    expect(page.locator("#announcer")).to_have_text("Error: the index is busy")
    turn.get_by_role("button", name="Retry").click()
    expect(turn.locator(".answer-text")).to_contain_text("India and Pakistan", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator("#question")).to_be_focused()  # not lost with the Retry button
    assert len(bodies) == 2 and bodies[0] == bodies[1], bodies  # the same question with the same history
    assert [turn["question"] for turn in bodies[1]["history"]] == ["What does Nurly Zhol mean?"]
    page.reload()  # the failed attempt was never stored; the retried answer was
    expect(page.locator(".turn .question")).to_have_count(2)
    watch.errors = [e for e in watch.errors if "status of 503" not in e]  # the failed load is expected
    watch.assert_clean()


def test_over_long_question_is_refused_in_the_page(browser: Browser, sample_qa: QA) -> None:
    sample_qa.settings = sample_qa.settings.model_copy(update={"max_question_chars": 40})
    server = serve(create_app(sample_qa))
    base_url = next(server)
    context = browser.new_context()
    try:
        page = context.new_page()
        bodies = _ask_bodies(page)
        page.goto(base_url + "/")
        expect(page.locator("#ask-form")).to_have_attribute("data-max-question-chars", "40")
        box = page.locator("#question")
        box.fill("What does Nurly Zhol mean?")
        expect(page.locator("#question-status")).to_be_hidden()
        too_long = "What does Nurly Zhol mean, and who joined the SCO?"
        box.fill(too_long)
        status = page.locator("#question-status")
        expect(status).to_have_text(
            f"{len(too_long)} / 40 characters: {len(too_long) - 40} over the limit. Shorten the question to send it."
        )
        expect(box).to_have_attribute("aria-invalid", "true")
        box.press("Enter")
        expect(box).to_have_value(too_long)  # kept whole, never cut
        expect(page.locator(".turn")).to_have_count(0)
        assert bodies == []
        box.fill(too_long[:40])
        expect(box).not_to_have_attribute("aria-invalid", "true")
        box.press("Enter")
        expect(page.locator(".turn")).to_have_count(1)
    finally:
        context.close()
        server.close()


def test_copy_puts_the_answer_and_its_sources_on_the_clipboard(
    browser: Browser, base_url: str, auth: dict[str, str]
) -> None:
    _add(base_url, auth, PLOVDIV)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        ask(page, "When is the zebra crossing festival in Plovdiv held?")
        reply = page.locator(".turn").last.locator(".reply")
        answer = reply.locator(".answer-text").text_content()
        reply.get_by_role("button", name="Copy the answer with its sources").click()
        expect(reply.locator(".copy-status")).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{answer}\n\nSources:\n[1] {PLOVDIV['title']} — {PLOVDIV['url']}"
    finally:
        context.close()


def test_confidence_and_query_are_shown_as_text_when_present(page: Page, base_url: str, watch: Watch) -> None:
    added: Iterator[dict[str, Any]] = iter([{"confidence": 0.83, "query": "Nurly Zhol meaning"}, {"confidence": 0.41}])

    def with_fields(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), **next(added)})

    page.route("**/api/ask", with_fields)
    page.goto(base_url + "/")
    ask(page, "What does Nurly Zhol mean?")
    first = page.locator(".turn").nth(0)
    expect(first.locator(".confidence")).to_have_text("Confidence: likely")
    expect(first.locator(".query")).to_have_text("Searched for: Nurly Zhol meaning")
    ask(page, "What does Nurly Zhol mean?")
    second = page.locator(".turn").nth(1)
    expect(second.locator(".confidence")).to_have_text("Confidence: unsure")
    expect(second.locator(".query")).to_have_count(0)
    page.reload()  # kept with the thread
    expect(page.locator(".confidence")).to_have_text(["Confidence: likely", "Confidence: unsure"])
    watch.assert_clean()


def test_live_region_announces_the_answer_text_only(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    expect(page.locator("[aria-live]")).to_have_count(1)
    ask(page, "What does Nurly Zhol mean?")
    answer = page.locator(".turn .answer-text").text_content() or ""
    spoken = re.sub(r"\s*\[\d+\]", "", answer).strip()
    expect(page.locator("#announcer")).to_have_text(spoken)
    expect(page.locator("#log")).not_to_have_attribute("aria-live", re.compile(".*"))
    ask(page, "What is the recipe for chocolate cake?")
    expect(page.locator("#announcer")).to_have_text("No answer: Not found in the articles.")
    watch.assert_clean()


def test_storage_that_fails_degrades_to_memory(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    context.add_init_script(
        "Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError'); };"
    )
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        ask(page, "What does Nurly Zhol mean?")
        expect(page.locator(".turn .answer-text")).to_contain_text("lighted path")
        expect(page.locator("#storage-note")).to_have_text(
            "This chat is not saved: the browser's storage is off or full."
        )
        ask(page, "Who joined the SCO?")  # follow-ups still work from memory
        expect(page.locator(".turn")).to_have_count(2)
    finally:
        context.close()


def test_example_questions_come_from_the_titles_and_can_be_asked(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/")
    examples = page.locator("a.example")
    expect(examples).to_have_text([f"Tell me about {SAMPLE_TITLE}"])
    expect(page.get_by_role("link", name="Browse the articles")).to_have_attribute("href", "/articles")
    examples.first.click()
    expect(page.locator(".turn")).to_have_count(1)
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator(".reply.pending")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".turn .source-title")).to_have_text([SAMPLE_TITLE])
    expect(page.locator("#empty")).to_be_hidden()
    watch.assert_clean()


def test_focus_is_never_hidden_under_the_question_bar(page: Page, base_url: str, watch: Watch) -> None:
    page.set_viewport_size({"width": 420, "height": 640})
    page.goto(base_url + "/")
    for question in ("What does Nurly Zhol mean?", "Who joined the SCO?", "How large is China's GDP?"):
        ask(page, question)
    page.evaluate("window.scrollTo(0, 0)")
    page.locator(".skip-link").focus()
    checked = 0
    for _ in range(60):
        page.keyboard.press("Tab")
        covered = page.evaluate(
            """() => {
                const el = document.activeElement;
                const form = document.getElementById('ask-form');
                if (!el || form.contains(el) || !document.getElementById('log').contains(el)) return null;
                const r = el.getBoundingClientRect(), f = form.getBoundingClientRect();
                return r.bottom > f.top + 1 || r.top < 0;
            }"""
        )
        if covered is not None:
            checked += 1
            assert covered is False, page.evaluate("document.activeElement.outerHTML")
    assert checked >= 10, checked
    watch.assert_clean()


def test_phone_layout_and_dark_scheme(browser: Browser, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        ask(page, "What does Nurly Zhol mean?")
        reply = page.locator(".turn .reply")
        expect(reply.locator(".source")).to_have_count(1)
        height = reply.bounding_box()
        assert height is not None and height["height"] < 844, height  # one answer fits on one screen
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(18, 21, 28)", background
        shot(page, "phone-dark.png")
    finally:
        context.close()


def test_article_view_and_list_without_javascript(browser: Browser, base_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        expect(page.locator("#ask-form")).to_be_visible()
        expect(page.locator("noscript")).to_have_count(1)
        page.get_by_role("link", name="Browse the articles").click()
        expect(page).to_have_url(base_url + "/articles")
        page.get_by_role("link", name=SAMPLE_TITLE).click()
        expect(page.locator("h1")).to_have_text(SAMPLE_TITLE)
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
    _add(base_url, auth, *hostile)

    page.goto(base_url + "/")
    # The example questions are made of these titles: still text.
    assert any("<img" in text for text in page.locator("a.example").all_text_contents())
    ask(page, "When is the zebra crossing festival in Plovdiv?")
    reply = page.locator(".turn").last.locator(".reply")
    expect(reply).not_to_have_class(re.compile(r"\babstained\b"))
    expect(reply.locator(".answer-text")).to_contain_text("zebra crossing festival in Plovdiv")
    sources = reply.locator(".source")
    expect(sources.first).to_be_visible()
    titles = " ".join(sources.locator(".source-title").all_text_contents())
    assert SCRIPT in titles or IMG in titles, titles
    quoted = " ".join(sources.locator(".cited-sentence, .passage").all_text_contents())
    assert IMG in quoted or SCRIPT in quoted or "<iframe" in quoted, quoted
    # No markup from the articles became elements, and no link points anywhere but http(s) or the app.
    expect(page.locator("script")).to_have_count(1)
    expect(page.locator("img, iframe, object, embed")).to_have_count(0)
    expect(page.locator("a.original")).to_have_count(0)
    _assert_no_script_urls(page)
    shot(page, "hostile-chat.png")

    page.reload()  # stored and drawn again from storage: still text
    expect(page.locator("script")).to_have_count(1)
    expect(page.locator("img, iframe, object, embed")).to_have_count(0)

    reply.locator("a.cite").first.click()
    mark = page.locator("mark#cited")
    expect(mark).to_be_visible()
    expect(page.locator("h1")).to_contain_text("<")
    expect(page.locator("script")).to_have_count(1)  # article.js only
    expect(page.locator("script[src='/static/article.js']")).to_have_count(1)
    expect(page.locator("img, iframe, object, embed")).to_have_count(0)
    _assert_no_script_urls(page)
    assert page.get_by_text("Read the original").count() == 0
    shot(page, "hostile-article.png")
    watch.assert_clean()


def test_api_docs_render_under_the_content_security_policy(page: Page, base_url: str, watch: Watch) -> None:
    response = page.goto(base_url + "/docs")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    expect(page.locator(".opblock-summary-path", has_text="/api/ask")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/search")).to_be_visible()
    shot(page, "docs.png")
    watch.assert_clean()


def test_history_is_trimmed_to_the_server_s_limits(browser: Browser, sample_qa: QA) -> None:
    # The page will ask it after two unanswered questions (the history it sends then, as the server answers it).
    before = [Turn(question=q, answer=NOT_FOUND) for q in ("What is the recipe for apple pie?", "How do I bake bread?")]
    nurly = sample_qa.ask("What does Nurly Zhol mean?", history=before)
    size = len(nurly.question) + len(nurly.answer) + len(nurly.citations[0].article_id)
    # Room for the Nurly Zhol turn, but not for it and the turn before it ("How do I bake bread?", not found).
    limit = size + 30
    sample_qa.settings = sample_qa.settings.model_copy(update={"max_history_turns": 2, "max_history_chars": limit})
    server = serve(create_app(sample_qa))
    base_url = next(server)
    context = browser.new_context()
    try:
        page = context.new_page()
        bodies = _ask_bodies(page)
        page.goto(base_url + "/")
        expect(page.locator("#ask-form")).to_have_attribute("data-max-history-turns", "2")
        for question in ("What is the recipe for chocolate cake?", "What is the recipe for apple pie?"):
            ask(page, question)
        ask(page, "How do I bake bread?")
        ask(page, "What does Nurly Zhol mean?")
        # At most two turns: the most recent ones.
        assert [t["question"] for t in bodies[3]["history"]] == [
            "What is the recipe for apple pie?",
            "How do I bake bread?",
        ]
        ask(page, "Who joined the SCO?")
        # The Nurly Zhol turn fits the limit; with the one before it, it would not, so that one is left out.
        (turn,) = bodies[4]["history"]
        assert turn["question"] == "What does Nurly Zhol mean?"
        assert len(turn["question"]) + len(turn["answer"]) + len(turn["article_ids"][0]) == size
        expect(page.locator(".reply.error")).to_have_count(0)  # the server never refused a history
    finally:
        context.close()
        server.close()


def test_skip_link_goes_to_the_question(page: Page, base_url: str, watch: Watch) -> None:
    page.goto(base_url + "/articles")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.goto(base_url + "/")
    skip = page.get_by_role("link", name="Skip to the question")
    skip.focus()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("#question")).to_be_focused()
    watch.assert_clean()


def test_a_filtered_question_cites_only_matching_articles_and_the_filter_stays_with_the_thread(
    page: Page, base_url: str, watch: Watch, auth: dict[str, str]
) -> None:
    """Asked alone, "How many visitors are expected?" is answered from Hoi An (20 April); from 1 May on, only
    Plovdiv (2 May) may answer. The filter is sent with each question, shown on the turn, kept with the thread
    through a reload, and a new chat starts without it."""
    _add(base_url, auth, PLOVDIV, HOI_AN)
    page.goto(base_url + "/")
    expect(page.locator("#filter-source optgroup[label=Folders] option")).to_have_count(1)  # from /api/sources
    bodies = _ask_bodies(page)
    page.locator("#filter-since").fill("2024-05-01")
    expect(page.locator("#filter-status")).to_have_text(
        "Questions in this chat use only articles published on or after 2024-05-01."
    )
    ask(page, "How many visitors are expected?")
    assert bodies[-1]["since"] == "2024-05-01" and "until" not in bodies[-1]
    turn = page.locator(".turn").last
    expect(turn.locator(".turn-filters")).to_have_text("Searched articles published on or after 2024-05-01.")
    expect(turn.locator(".answer-text")).to_contain_text("40,000")
    dates = turn.locator(".source-date").all_inner_texts()
    assert dates and all(d >= "2024-05-01" for d in dates), dates
    expect(turn.locator(".source-site")).to_have_text(["example.org"])  # the host of its link

    page.reload()
    expect(page.locator("#filter-since")).to_have_value("2024-05-01")
    expect(page.locator(".turn .turn-filters")).to_have_count(1)
    ask(page, "Which festival was founded in 1998?")
    assert bodies[-1]["since"] == "2024-05-01"

    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#filter-since")).to_have_value("")
    expect(page.locator("#filter-clear")).to_be_hidden()
    page.locator("#filter-source").select_option("corpus")
    ask(page, "How many visitors are expected?")
    assert bodies[-1]["source"] == "corpus" and "since" not in bodies[-1]
    expect(page.locator(".turn").last.locator(".abstain-label")).to_be_visible()  # no festival in corpus/

    page.locator("#threads summary").click()
    page.locator(".open-thread", has_text="How many visitors").last.click()
    expect(page.locator("#filter-since")).to_have_value("2024-05-01")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("#filter-since")).to_have_value("")
    page.reload()
    expect(page.locator("#filter-since")).to_have_value("")
    shot(page, "filters.png")
    watch.assert_clean()


def test_the_article_list_filters_without_javascript(browser: Browser, base_url: str, auth: dict[str, str]) -> None:
    _add(base_url, auth, PLOVDIV, HOI_AN)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
    try:
        page = context.new_page()
        page.goto(base_url + "/articles")
        expect(page.locator(".articles li")).to_have_count(3)
        page.locator("#list-since").fill("2024-04-01")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"/articles\?since=2024-04-01&until=&source=$"))
        expect(page.locator(".articles li")).to_have_count(2)
        expect(page.locator(".stats")).to_contain_text("2 articles published on or after 2024-04-01")
        page.locator("#list-source").select_option("corpus")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator(".empty-list")).to_contain_text("No article is published on or after 2024-04-01")
        page.get_by_role("link", name="Clear filters").click()
        expect(page.locator(".articles li")).to_have_count(3)
    finally:
        context.close()
