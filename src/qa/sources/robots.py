"""robots.txt, read once per site and kept for a while (RFC 9309's rules for missing and unreachable files)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.robotparser import RobotFileParser

from qa.articles.reading import decode
from qa.errors import InvalidArticle

TOKEN = "qa"  # the product token qa obeys in robots.txt
KEEP_SECONDS = 3600.0  # how long a site's rules are kept
KEEP_UNREACHABLE_SECONDS = 300.0  # an unreachable robots.txt blocks the site for this long, then is asked again


class RobotsCache:
    """Whether robots.txt lets qa fetch a URL; each site's file is fetched through `fetch_robots(origin)`.

    A 4xx (no file) allows everything; a 5xx or an unreachable file disallows everything for a few minutes
    (RFC 9309, 2.3.1.3 and 2.3.1.4).
    """

    def __init__(self, fetch_robots: Callable[[str], tuple[int, bytes]]) -> None:
        self._fetch = fetch_robots
        self._rules: dict[str, tuple[RobotFileParser | bool, float]] = {}
        self._lock = threading.Lock()

    def allows(self, origin: str, url: str) -> bool:
        """True when the site's robots.txt lets qa fetch `url`."""
        with self._lock:
            cached = self._rules.get(origin)
        if cached is None or cached[1] < time.monotonic():
            cached = self._read(origin)
            with self._lock:
                self._rules[origin] = cached
        rules = cached[0]
        return rules.can_fetch(TOKEN, url) if isinstance(rules, RobotFileParser) else rules

    def _read(self, origin: str) -> tuple[RobotFileParser | bool, float]:
        """The site's rules (True: everything allowed, False: nothing) and until when to keep them."""
        status, body = self._fetch(origin)
        if 400 <= status < 500:
            return True, time.monotonic() + KEEP_SECONDS
        if status != 200:
            return False, time.monotonic() + KEEP_UNREACHABLE_SECONDS
        try:
            lines = decode(body, origin + "/robots.txt").splitlines() if body.strip() else []
        except InvalidArticle:  # binary junk: no rules
            lines = []
        rules = RobotFileParser(origin + "/robots.txt")
        rules.parse(lines)
        return rules, time.monotonic() + KEEP_SECONDS
