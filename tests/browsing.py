"""Fixtures and helpers for the tests that drive headless Chromium (Debian's) against a live uvicorn server.

Loaded as a plugin by conftest.py; Playwright is imported only when a browser fixture is used.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI

from qa import QA
from qa.server.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright, Request

CHROMIUM = Path("/usr/bin/chromium")
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


def require_browser() -> None:
    """Skip the calling module without Debian's Chromium or the playwright package."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package", allow_module_level=True)
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


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


def serve(app: FastAPI) -> Generator[str, None, None]:
    """Run the app under uvicorn on a free local port until the generator is closed."""
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
    yield from serve(create_app(sample_qa))


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

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
    """A fresh browser context (its own storage) on a desktop-sized window, watched for misbehaviour."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(ANSWER_TIMEOUT_MS)
    watch.attach(page)
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    """A screenshot in test-artifacts/ (gitignored), for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def ask(page: Page, question: str) -> None:
    """Type a question, press Enter, and wait until its answer (or error) has replaced the pending state."""
    from playwright.sync_api import expect

    turns = page.locator(".turn")
    before = turns.count()
    box = page.locator("#question")
    box.fill(question)
    box.press("Enter")
    expect(turns).to_have_count(before + 1)
    expect(turns.last.locator(".question")).to_have_text("Question: " + question)
    expect(page.locator(".reply.pending")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#ask-form button[type=submit]")).to_be_enabled()
