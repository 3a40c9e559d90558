"""RSS 2.0 and Atom feeds (feedparser): followed, polled with conditional GETs, new and changed items indexed.

A poll asks for the feed with the ETag and Last-Modified of the last one; a 304 ends it with nothing fetched and
nothing written. Otherwise each item is matched to what qa remembers by GUID, then link, then a hash of its
entry: an item seen before with the same entry is left alone (its page is not fetched again); a new item, or one
whose entry changed, has its page fetched (conditionally, when qa has its validators) and read into an article,
written through the Indexer, so an article that changed is updated in place. When the page cannot be fetched or
read, the item's own summary stands in, and the article's origin says so.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from qa.articles.reading import article_from_mapping
from qa.backends.base import FeedItem
from qa.errors import FeedNotFound, InvalidFeed, QAError
from qa.indexing.pipeline import Indexer
from qa.progress import Progress
from qa.records import Article, Feed, Origin, PollReport
from qa.sources.fetching import Fetched, Fetcher, target_of
from qa.sources.pages import article_from_page, article_id_for, fetch_page, now, site_of

log = logging.getLogger(__name__)

ACCEPT_FEEDS = "application/rss+xml,application/atom+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.1"
WRITE_EVERY = 16  # articles fetched before they are written (readers see a long poll's items as it goes)


@dataclass(frozen=True)
class Entry:
    """One item of a feed, as qa uses it."""

    key: str  # GUID, else link, else the entry's hash
    link: str | None
    title: str
    text: str  # the item's content or summary, as plain text
    published: str | None  # ISO date (YYYY-MM-DD) in the publisher's own time zone
    author: str | None
    entry_hash: str


def parse_feed(data: bytes, url: str, content_type: str = "") -> tuple[str, list[Entry]]:
    """A feed's title and entries; InvalidFeed when the document is no RSS or Atom feed."""
    import feedparser  # only feeds need it

    # A stream, never bytes or a string: feedparser would open a string that looks like a URL or a file name.
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers={"content-location": url, "content-type": content_type or "application/xml"},
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    if not parsed.get("version") and not parsed.get("entries"):
        problem = parsed.get("bozo_exception")
        raise InvalidFeed(f"{url} is not an RSS or Atom feed" + (f" ({str(problem)[:120]})" if problem else ""))
    title = _plain(str(parsed.get("feed", {}).get("title") or ""))
    return title, [_entry(raw) for raw in parsed.get("entries", [])]


def _entry(raw: Mapping[str, Any]) -> Entry:
    # dict.get, not feedparser's own get: that maps a missing "updated" to "published", with a warning.
    def field(key: str) -> Any:
        return dict.get(raw, key) if isinstance(raw, dict) else raw.get(key)

    link = field("link")
    link = link if isinstance(link, str) and link.startswith(("http://", "https://")) else None
    contents = [c.get("value", "") for c in field("content") or [] if isinstance(c, Mapping)]
    summary = str(field("summary") or "")
    text = max((_plain(t) for t in [*contents, summary]), key=len, default="")
    # The GUID is left out, so an entry re-issued under a new GUID is still recognised by its content.
    fingerprint = [field(k) for k in ("link", "title", "summary", "published", "updated")] + contents
    entry_hash = hashlib.sha256(json.dumps(fingerprint, default=str).encode()).hexdigest()[:32]
    guid = field("id")
    return Entry(
        key=str(guid) if guid else link or entry_hash,
        link=link,
        title=_plain(str(field("title") or "")),
        text=text,
        published=_date(raw),
        author=_plain(str(field("author") or "")) or None,
        entry_hash=entry_hash,
    )


def _plain(fragment: str) -> str:
    """Text of an HTML fragment: tags dropped, entities decoded, paragraphs kept apart."""
    fragment = re.sub(r"(?i)<\s*(?:br|/p|/div|/li|/h\d)\b[^>]*>", "\n\n", fragment)
    text = html.unescape(re.sub(r"<[^>]*>", " ", fragment))
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def _date(raw: Mapping[str, Any]) -> str | None:
    """The item's date as YYYY-MM-DD, read from the text the feed gave (RFC 822 or RFC 3339)."""
    for key in ("published", "updated", "created"):
        value = dict.get(raw, key) if isinstance(raw, dict) else raw.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            return email.utils.parsedate_to_datetime(value).date().isoformat()
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            pass
        parsed = dict.get(raw, f"{key}_parsed") if isinstance(raw, dict) else None  # feedparser's reading, UTC
        if parsed:
            return date(int(parsed[0]), int(parsed[1]), int(parsed[2])).isoformat()
    return None


class FeedPoller:
    """Follows feeds for one index: add, remove, and poll them into it through its Indexer."""

    def __init__(self, indexer: Indexer, fetcher: Fetcher) -> None:
        self.indexer = indexer
        self.backend = indexer.backend
        self.fetcher = fetcher

    def add(self, url: str) -> tuple[Feed, int]:
        """Follow a feed (fetched once to check it is one); returns it and how many items it lists now."""
        url = target_of(url).url
        fetched = self.fetcher.fetch(url, accept=ACCEPT_FEEDS)
        title, entries = parse_feed(fetched.body, fetched.url, fetched.content_type)
        known = {f.url: f for f in self.backend.feeds()}
        feed = known.get(url) or Feed(url=url, added=now())
        feed = feed.model_copy(update={"title": title or feed.title})
        self.backend.save_feed(feed)
        return feed, len(entries)

    def remove(self, url: str) -> None:
        """Stop following a feed; its articles stay in the index."""
        if not self.backend.remove_feed(url.strip()):
            raise FeedNotFound(url)

    def feeds(self) -> list[Feed]:
        """The followed feeds."""
        return self.backend.feeds()

    def poll_all(self, progress: Callable[[Feed], Progress | None] | None = None) -> list[PollReport]:
        """Poll every followed feed once; `progress(feed)` may give a progress bar for its items."""
        return [self.poll(feed, progress(feed) if progress else None) for feed in self.backend.feeds()]

    def poll(self, feed: Feed, progress: Progress | None = None) -> PollReport:
        """Poll one feed: new and changed items are fetched and indexed; see the module's docstring."""
        report = PollReport(feed=feed.url)
        try:
            fetched = self.fetcher.fetch(
                feed.url, etag=feed.etag, last_modified=feed.last_modified, accept=ACCEPT_FEEDS
            )
            known = self.backend.feed_items(feed.url)
            if fetched.not_modified:
                report.not_modified = True
                report.unchanged = sorted({i.article_id for i in known if i.article_id})
                self._finish(feed, report)
                return report
            title, entries = parse_feed(fetched.body, fetched.url, fetched.content_type)
            self._apply(feed, entries, known, report, progress)
        except QAError as e:
            report.error = str(e)
            log.warning("feed %s: %s", feed.url, e)
            self._finish(feed, report)
            return report
        self._finish(feed, report, fetched, title)
        return report

    def _apply(
        self, feed: Feed, entries: list[Entry], known: list[FeedItem], report: PollReport, progress: Progress | None
    ) -> None:
        """Fetch and index the new and changed entries; remember every entry."""
        by_key = {i.key: i for i in known}
        by_link = {i.link: i for i in known if i.link}
        by_hash = {i.entry_hash: i for i in known}
        todo: list[tuple[Entry, FeedItem | None]] = []
        remembered: list[FeedItem] = []
        seen: set[str] = set()
        for entry in entries:
            if entry.key in seen or (entry.link is not None and entry.link in seen):
                continue  # the same item twice in one feed
            seen |= {entry.key, *([entry.link] if entry.link else [])}
            stored = by_key.get(entry.key) or (by_link.get(entry.link) if entry.link else None)
            stored = stored or by_hash.get(entry.entry_hash)
            if stored is not None and stored.entry_hash == entry.entry_hash:
                if stored.article_id:
                    report.unchanged.append(stored.article_id)
                if stored.key != entry.key:  # the same entry under a new GUID or link: remember that too
                    remembered.append(
                        FeedItem(
                            entry.key,
                            entry.link,
                            entry.entry_hash,
                            stored.article_id,
                            stored.page_etag,
                            stored.page_last_modified,
                        )
                    )
                continue
            todo.append((entry, stored))
        if progress is not None:
            progress.total = len(todo)
        pending: list[tuple[Article | None, FeedItem]] = []
        for entry, stored in todo:
            pending.append(self._read(feed, entry, stored, report))
            if progress is not None:
                progress.update(1)
            if len(pending) >= WRITE_EVERY:
                remembered += self._write(pending, report)
                pending = []
        remembered += self._write(pending, report)
        if remembered:
            self.backend.save_feed_items(feed.url, remembered)

    def _read(
        self, feed: Feed, entry: Entry, stored: FeedItem | None, report: PollReport
    ) -> tuple[Article | None, FeedItem]:
        """The article an entry leads to (None when its page did not change) and what to remember of it."""
        reason = "the item has no link"
        if entry.link is not None:
            try:
                etag = stored.page_etag if stored is not None and stored.article_id else None
                modified = stored.page_last_modified if stored is not None and stored.article_id else None
                page = fetch_page(self.fetcher, entry.link, etag=etag, last_modified=modified)
                if page.not_modified and stored is not None:
                    item = FeedItem(entry.key, entry.link, entry.entry_hash, stored.article_id, etag, modified)
                    report.unchanged.append(str(stored.article_id))
                    return None, item
                article = self._from_page(feed, entry, page)
                return article, FeedItem(
                    entry.key, entry.link, entry.entry_hash, article.id, page.etag, page.last_modified
                )
            except QAError as e:
                reason = str(e)
        fallback = self._from_summary(feed, entry, reason)
        if fallback is not None and not self._may_replace(fallback.id, feed):
            reason += "; its summary does not replace the article already indexed under its id"
            fallback = None
        if fallback is None:
            report.failed.append(f"{entry.link or entry.key}: {reason}")
        return fallback, FeedItem(entry.key, entry.link, entry.entry_hash, fallback.id if fallback else None)

    @staticmethod
    def _from_page(feed: Feed, entry: Entry, page: Fetched) -> Article:
        article = article_from_page(page, feed=feed.url)
        return article.model_copy(
            update={
                "published": entry.published or article.published,  # the feed's date is the publisher's own
                "author": article.author or entry.author,
            }
        )

    def _may_replace(self, article_id: str, feed: Feed) -> bool:
        """Whether a feed's summary may be written under this id: nothing is there, or this feed's summary is.

        A feed names any link it likes; its summary must not overwrite a page read from the site, a file or an
        upload (a page fetched later does replace a summary).
        """
        stored = self.backend.article(article_id)
        origin = stored.origin if stored is not None else None
        return stored is None or (origin is not None and origin.text_from == "feed summary" and origin.feed == feed.url)

    @staticmethod
    def _from_summary(feed: Feed, entry: Entry, reason: str) -> Article | None:
        """The entry's own title and summary as an article, or None when it has no text."""
        if not entry.text.strip():
            return None
        url = entry.link or feed.url
        try:
            article_id = (
                article_id_for(entry.link) if entry.link else f"{article_id_for(feed.url)}#{entry.entry_hash[:12]}"
            )
            article = article_from_mapping(
                {
                    "id": article_id,
                    "title": entry.title,
                    "text": entry.text,
                    "url": url,
                    "published": entry.published,
                    "author": entry.author,
                    "source": site_of(url),
                },
                article_id,
                f"{feed.url}: item {entry.key}",
            )
        except QAError:
            return None
        origin = Origin(fetched=now(), text_from="feed summary", feed=feed.url, reason=reason[:300])
        log.info("feed %s: %s: %s; the feed's summary stands in", feed.url, entry.link, reason)
        return article.model_copy(update={"origin": origin})

    def _write(self, pending: Iterable[tuple[Article | None, FeedItem]], report: PollReport) -> list[FeedItem]:
        """Index the fetched articles; returns what to remember of their items."""
        pending = list(pending)
        articles = [a for a, _ in pending if a is not None]
        statuses = self.indexer.upsert(articles) if articles else {}
        outcome = {"added": report.new, "updated": report.updated, "unchanged": report.unchanged}
        for article_id, status in statuses.items():
            outcome[status].append(article_id)
        return [item for _, item in pending]

    def _finish(self, feed: Feed, report: PollReport, fetched: Fetched | None = None, title: str = "") -> None:
        """Record the poll: its time and summary and, once its items are stored, the feed's validators."""
        update: dict[str, Any] = {"polled": now(), "last_result": report.outcome()}
        if fetched is not None and not fetched.not_modified:
            update |= {"etag": fetched.etag, "last_modified": fetched.last_modified, "title": title or feed.title}
        self.backend.save_feed(feed.model_copy(update=update))


def poll_forever(
    poller: FeedPoller,
    interval: float,
    stop: threading.Event,
    on_poll: Callable[[PollReport], None] | None = None,
) -> None:
    """Poll every feed, then wait `interval` seconds, until `stop` is set (the `qa serve --feeds` thread)."""
    while not stop.is_set():
        try:
            for report in poller.poll_all():
                log.info("feeds: %s", report.summary())
                if on_poll is not None:
                    on_poll(report)
        except Exception:  # a poller must outlive one bad round
            log.exception("feed poll failed")
        stop.wait(interval)
