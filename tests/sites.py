"""A web site on 127.0.0.1 for the fetching and feed tests: pages the test sets, validators, request counts.

Tests never connect anywhere else: conftest.py keeps every host lookup of qa.sources on this machine.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape


@dataclass
class Page:
    """What the site answers at one path."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None  # for redirects
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    stall: bool = False  # send the headers, then nothing until the site closes
    delay: float = 0.0  # seconds the site takes to answer (a slow site, so concurrent requests would overlap)
    modified: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class Site:
    """An HTTP/1.0 server in a thread; `requests` counts GETs per path, `agents` the User-Agents seen."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: Counter[str] = Counter()
        self.agents: list[str] = []
        self.release = threading.Event()  # lets stalled responses end
        self.in_flight = 0
        self.most_in_flight = 0
        self._count_lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # (certificate, key): HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes | str = b"", **kwargs: Any) -> Page:
        page = Page(body.encode() if isinstance(body, str) else body, **kwargs)
        self.pages[path] = page
        return page

    def start(self) -> Site:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with site._count_lock:
                    site.requests[path] += 1
                    site.agents.append(self.headers.get("User-Agent", ""))
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                try:
                    page = site.pages.get(path)
                    if page is not None and page.delay:
                        site.release.wait(page.delay)  # a slow server, not a synchronisation
                finally:
                    # A request stops counting as in flight before its answer is sent: once the client has the
                    # answer it may start the next request before this thread runs again, and that is not overlap.
                    with site._count_lock:
                        site.in_flight -= 1
                self._answer(page)

            def _answer(self, page: Page | None) -> None:
                if page is None:
                    self.send_error(404)
                    return
                if page.location is not None:
                    self.send_response(page.status)
                    self.send_header("Location", page.location)
                    self.end_headers()
                    return
                if self._not_modified(page):
                    self.send_response(304)
                    self.send_header("ETag", page.etag)
                    self.end_headers()
                    return
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("ETag", page.etag)
                self.send_header("Last-Modified", format_datetime(page.modified, usegmt=True))
                if page.declare_length:
                    self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                if page.stall:
                    self.wfile.flush()
                    site.release.wait(30)
                    return
                self.wfile.write(page.body)

            def _not_modified(self, page: Page) -> bool:
                if (tag := self.headers.get("If-None-Match")) is not None:
                    return tag == page.etag
                if (since := self.headers.get("If-Modified-Since")) is not None:
                    try:
                        return page.modified <= parsedate_to_datetime(since)
                    except (TypeError, ValueError):
                        return False
                return False

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# -- a news site with a feed -----------------------------------------------------------------------------------
TOWNS = [
    a + b
    for a in ("Bal", "Cor", "Dun", "Fen", "Gar", "Hol", "Kel", "Lom", "Mar", "Nor")
    for b in ("brook", "ford", "haven", "mere", "stead", "wick")
]
FIRST_DAY = date(2024, 1, 1)


@dataclass(frozen=True)
class Story:
    """One dated story: a harbour closed for a number of days only this story gives."""

    n: int
    closed_days: int

    @property
    def town(self) -> str:
        return TOWNS[self.n]

    @property
    def path(self) -> str:
        return f"/news/harbour-{self.town.lower()}.html"

    @property
    def day(self) -> date:
        return FIRST_DAY + timedelta(days=self.n)

    @property
    def title(self) -> str:
        return f"Harbour of {self.town} reopens"

    @property
    def question(self) -> str:
        return f"For how many days was the harbour of {self.town} closed?"

    def article_id(self, site: Site) -> str:
        return f"127.0.0.1:{site.port}{self.path.removesuffix('.html')}"

    def page(self, site: Site) -> str:
        t = self.town
        return f"""<!doctype html><html><head><title>{self.title}</title>
<link rel="canonical" href="{site.url(self.path)}">
<meta name="author" content="Reporter {self.n}">
<meta property="article:published_time" content="{self.day.isoformat()}T08:00:00Z">
</head><body><nav><a href="/">Home</a> | <a href="/news/">News</a></nav>
<article><h1>{self.title}</h1>
<p>The harbour of {t} reopened on Monday after being closed for {self.closed_days} days, the port authority
said. Engineers had to rebuild a stretch of the sea wall that a winter storm had washed away.</p>
<p>Fishing boats from {t} were moored in a neighbouring bay while the work went on, and the ferry service
to the islands ran from a temporary pier on the far side of the estuary.</p>
<p>Traders in {t} said the closure had cost them most of the season's visitors, and the town council
promised a grant to the shops that stayed open through the repairs.</p></article>
<footer>Copyright the {t} Gazette</footer></body></html>"""


def rss(site: Site, stories: list[Story], title: str = "Coastal News") -> str:
    """An RSS 2.0 feed of the stories; each link carries a tracking parameter the canonical URL has not."""
    items = "".join(
        f"""<item><title>{escape(s.title)}</title><link>{site.url(s.path)}?utm_source=rss</link>
<guid isPermaLink="false">story-{s.n}</guid>
<pubDate>{s.day.strftime("%a, %d %b %Y")} 23:30:00 -0500</pubDate>
<description>{escape(f"The harbour of {s.town} has reopened after {s.closed_days} days.")}</description></item>"""
        for s in stories
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{escape(title)}</title><link>{site.url("/")}</link>
<description>News from the coast</description>{items}</channel></rss>"""


def publish(site: Site, stories: list[Story]) -> None:
    """Put every story's page and the feed listing them all on the site."""
    for story in stories:
        site.put(story.path, story.page(site))
    site.put("/feed.xml", rss(site, stories), content_type="application/rss+xml; charset=utf-8")
