"""Feeds: a local feed of dated stories followed, polled, answered from; conditional GETs, updates in place,
summaries standing in for pages that cannot be fetched. The feed state is checked on both back ends."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Any

import pytest

from qa import QA
from qa.backends.base import FeedItem
from qa.errors import FeedNotFound, InvalidFeed
from qa.records import Feed, PollReport
from qa.settings import Settings
from qa.sources.feeds import parse_feed, poll_forever
from sites import Site, Story, publish, rss

BOTH_BACK_ENDS = pytest.mark.parametrize("backend", ["faiss", "postgres"], indirect=True)


@pytest.fixture
def news(qa: QA, settings: Settings) -> QA:
    """An empty index that may fetch from 127.0.0.1."""
    return QA(settings.model_copy(update={"fetch_allow": ["127.0.0.1"]}), qa.embedder)


def page_requests(site: Site) -> Counter[str]:
    return Counter({path: n for path, n in site.requests.items() if path.startswith("/news/")})


def spy(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> list[Any]:
    """Record the calls of one method of one object (it still runs)."""
    calls: list[Any] = []
    original = getattr(target, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, recorded)
    return calls


@BOTH_BACK_ENDS
def test_a_feed_of_50_stories_is_polled_kept_current_and_answered(
    news: QA, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    stories = [Story(n, 3 + n) for n in range(60)]
    publish(site, stories[:50])
    feed_url = site.url("/feed.xml")
    feed, listed = news.follow_feed(feed_url)
    assert (feed.title, listed) == ("Coastal News", 50)

    [first] = news.poll_feeds()
    assert len(first.new) == 50 and not first.updated and not first.failed and first.error is None
    assert sorted(first.new) == sorted(s.article_id(site) for s in stories[:50])
    assert page_requests(site) == Counter({s.path: 1 for s in stories[:50]})
    # Every story on the default back end; every fifth on PostgreSQL, whose retrieval tests/test_api.py covers.
    for story in stories[: 50 : 1 if news.settings.backend == "faiss" else 5]:
        answer = news.ask(story.question)
        assert answer.citations and answer.citations[0].article_id == story.article_id(site), story.question
        assert f"{story.closed_days} days" in answer.answer, (story.question, answer.answer)
    article = news.article(stories[7].article_id(site))
    assert article.published == "2024-01-08" and article.source == "127.0.0.1"  # the publisher's own date
    assert article.url == site.url(stories[7].path)  # canonical: the feed's tracking parameter is gone
    assert article.origin is not None and article.origin.feed == feed_url and article.origin.text_from == "page"

    # Nothing new: the feed answers 304 to the conditional GET; no page is fetched and nothing is written.
    upserts = spy(monkeypatch, news.indexer, "upsert")
    remembered = spy(monkeypatch, news.backend, "save_feed_items")
    feed_gets = site.requests["/feed.xml"]
    [second] = news.poll_feeds()
    assert second.not_modified and not second.new and not second.updated and len(second.unchanged) == 50
    assert site.requests["/feed.xml"] == feed_gets + 1 and page_requests(site) == Counter(
        {s.path: 1 for s in stories[:50]}
    )
    assert upserts == [] and remembered == []
    assert news.counts()[0] == 50

    # Ten new stories: only their pages are fetched.
    publish(site, stories)
    [third] = news.poll_feeds()
    assert sorted(third.new) == sorted(s.article_id(site) for s in stories[50:])
    assert len(third.unchanged) == 50 and not third.updated
    assert page_requests(site) == Counter({s.path: 1 for s in stories})
    assert news.ask(stories[55].question).citations[0].article_id == stories[55].article_id(site)

    # A story whose page changed (and its item with it) is updated in place, under the same id.
    changed = Story(3, 99)
    stories[3] = changed
    publish(site, stories)
    [fourth] = news.poll_feeds()
    assert fourth.updated == [changed.article_id(site)] and not fourth.new and len(fourth.unchanged) == 59
    assert page_requests(site)[changed.path] == 2 and page_requests(site)[stories[4].path] == 1
    assert news.counts()[0] == 60
    assert "99 days" in news.ask(changed.question).answer


@BOTH_BACK_ENDS
def test_feed_state_is_stored_by_the_back_end(news: QA, site: Site) -> None:
    backend = news.backend
    feed = Feed(url=site.url("/feed.xml"), title="Coastal", added="2024-01-01T00:00:00+00:00")
    backend.save_feed(feed)
    backend.save_feed(feed.model_copy(update={"etag": '"abc"', "polled": "2024-01-02T00:00:00+00:00"}))
    [stored] = backend.feeds()
    assert stored.etag == '"abc"' and stored.added == "2024-01-01T00:00:00+00:00" and stored.title == "Coastal"
    items = [FeedItem("g1", "http://x/1", "h1", "x/1", '"e1"', None), FeedItem("g2", None, "h2", None)]
    backend.save_feed_items(feed.url, items)
    backend.save_feed_items(feed.url, [FeedItem("g1", "http://x/1", "h1b", "x/1", '"e2"', "Mon")])
    assert backend.feed_items(feed.url) == [FeedItem("g1", "http://x/1", "h1b", "x/1", '"e2"', "Mon"), items[1]]
    assert backend.remove_feed(feed.url) and backend.feeds() == [] and backend.feed_items(feed.url) == []
    assert not backend.remove_feed(feed.url)


@BOTH_BACK_ENDS
def test_an_item_whose_page_fails_falls_back_to_its_summary(news: QA, site: Site) -> None:
    stories = [Story(n, 20 + n) for n in range(3)]
    publish(site, stories)
    del site.pages[stories[1].path]  # a 404
    news.follow_feed(site.url("/feed.xml"))
    [report] = news.poll_feeds()
    assert sorted(report.new) == sorted(s.article_id(site) for s in stories) and not report.failed
    fallback = news.article(stories[1].article_id(site))
    assert fallback.origin is not None and fallback.origin.text_from == "feed summary"
    assert "HTTP 404" in (fallback.origin.reason or "")
    assert fallback.text == f"The harbour of {stories[1].town} has reopened after 21 days."
    assert fallback.title == stories[1].title and fallback.published == "2024-01-02"
    assert news.article(stories[0].article_id(site)).origin.text_from == "page"  # type: ignore[union-attr]


def test_a_summary_never_overwrites_a_page_read_from_the_site(news: QA, site: Site) -> None:
    story = Story(0, 12)
    site.put(story.path, story.page(site))
    news.add_url(site.url(story.path))
    hostile = rss(site, [Story(0, 500)]).replace("story-0", "other-guid")  # the same link, another story
    site.put("/feed.xml", hostile, content_type="application/rss+xml")
    del site.pages[story.path]  # the page now fails, so the (hostile) summary would stand in
    news.follow_feed(site.url("/feed.xml"))
    [report] = news.poll_feeds()
    assert not report.new and not report.updated and "does not replace" in report.failed[0]
    assert "12 days" in news.article(story.article_id(site)).text


@BOTH_BACK_ENDS
def test_items_are_deduplicated_by_guid_link_and_content(news: QA, site: Site) -> None:
    story = Story(0, 7)
    site.put(story.path, story.page(site))
    one = rss(site, [story])
    twice = one.replace("</channel>", one[one.index("<item>") : one.index("</item>") + 7] + "</channel>")
    site.put("/feed.xml", twice, content_type="application/rss+xml")
    news.follow_feed(site.url("/feed.xml"))
    [report] = news.poll_feeds()
    assert report.new == [story.article_id(site)] and site.requests[story.path] == 1
    # The same entry under a new GUID (some feeds regenerate them) is recognised by its content.
    site.put("/feed.xml", one.replace("story-0", "regenerated-0"), content_type="application/rss+xml")
    [again] = news.poll_feeds()
    assert again.unchanged == [story.article_id(site)] and not again.new and site.requests[story.path] == 1


@BOTH_BACK_ENDS
def test_feeds_are_added_listed_and_removed(news: QA, site: Site) -> None:
    publish(site, [Story(0, 4)])
    site.put("/not-a-feed.html", "<html><body><p>hello</p></body></html>")
    with pytest.raises(InvalidFeed, match="not an RSS or Atom feed"):
        news.follow_feed(site.url("/not-a-feed.html"))
    news.follow_feed(site.url("/feed.xml"))
    news.follow_feed(site.url("/feed.xml"))  # twice is once
    assert [f.url for f in news.feeds()] == [site.url("/feed.xml")]
    news.poll_feeds()
    [feed] = news.feeds()
    assert feed.polled and feed.last_result == "1 new, 0 updated, 0 unchanged, 0 failed" and feed.etag
    news.unfollow_feed(site.url("/feed.xml"))
    assert news.feeds() == [] and news.counts()[0] == 1  # its articles stay
    with pytest.raises(FeedNotFound):
        news.unfollow_feed(site.url("/feed.xml"))


def test_a_feed_that_cannot_be_fetched_is_reported_not_raised(news: QA, site: Site) -> None:
    publish(site, [Story(0, 4)])
    news.follow_feed(site.url("/feed.xml"))
    del site.pages["/feed.xml"]
    [report] = news.poll_feeds()
    assert report.error is not None and "HTTP 404" in report.error
    assert news.feeds()[0].last_result == report.outcome()


def test_atom_feeds_and_their_dates() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom &amp; Co</title><id>urn:x</id>
<updated>2024-03-01T00:00:00Z</updated>
<entry><title>First</title><id>urn:1</id><link href="/a/1"/><updated>2024-03-01T23:30:00-05:00</updated>
<summary type="html">&lt;p&gt;One &lt;b&gt;bold&lt;/b&gt; line.&lt;/p&gt;&lt;p&gt;Two&lt;/p&gt;</summary></entry>
<entry><title>No link</title><id>urn:2</id><published>2024-02-29T10:00:00Z</published>
<content type="text">Longer content than the summary.</content><summary>Short.</summary></entry></feed>"""
    title, entries = parse_feed(atom, "https://example.org/atom.xml", "application/atom+xml")
    assert title == "Atom & Co"
    first, second = entries
    assert (first.key, first.link, first.published) == ("urn:1", "https://example.org/a/1", "2024-03-01")
    assert first.text == "One bold line.\n\nTwo"
    assert (second.link, second.published, second.text) == (None, "2024-02-29", "Longer content than the summary.")


def test_a_feed_body_is_never_read_as_a_file_name_or_url(tmp_path: Any) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text('<rss version="2.0"><channel><title>leaked</title></channel></rss>')
    with pytest.raises(InvalidFeed):
        parse_feed(str(secret).encode(), "https://example.org/feed", "")


def test_the_background_poller_polls_until_stopped(news: QA, site: Site) -> None:
    """What `qa serve --feeds` runs: a poll at once, then one every QA_FEED_INTERVAL seconds, until stopped."""
    publish(site, [Story(0, 6)])
    news.follow_feed(site.url("/feed.xml"))
    reports: queue.Queue[PollReport] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=poll_forever, args=(news.feed_poller, 3600, stop, reports.put), daemon=True)
    thread.start()
    first = reports.get(timeout=60)
    assert first.new == [Story(0, 6).article_id(site)]
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and reports.empty()
