"""A web page into an article: fetched safely, read by the HTML reader, its id the canonical URL's slug."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from qa.articles.ids import MAX_ID_CHARS, checked_id, slug_from_url
from qa.articles.reading import decode, read_html
from qa.errors import InvalidArticle, InvalidURL
from qa.records import Article, Origin
from qa.sources.fetching import Fetched, Fetcher
from qa.text.unicode import normalise

HTML_TYPES = {"text/html", "application/xhtml+xml"}
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
# Query parameters that only track a click; a URL without them names the same story.
_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref", "cmpid", "ocid")


def site_of(url: str) -> str:
    """The site an article belongs to: its URL's host in lower case, without "www."."""
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def same_site(url: str, other: str) -> bool:
    """Whether two URLs are on one site: the same host once a leading "www.", "m." or "amp." is set aside.

    Deliberately not "one a subdomain of the other": on shared hosts (github.io, blogspot.com) a user's
    subdomain must not speak for the parent domain or its other users.
    """

    def host(u: str) -> str:
        return re.sub(r"^(?:www|m|amp)\.", "", site_of(u))

    return bool(site_of(url)) and host(url) == host(other)


def article_id_for(url: str) -> str:
    """The id of the article at a URL: host and path (see slug_from_url), plus any query that is not tracking."""
    slug = slug_from_url(url)
    if not slug:
        raise InvalidURL(f"the URL {url[:200]!r} has no host")
    query = [(k, v) for k, v in parse_qsl(urlsplit(url).query) if not k.lower().startswith(_TRACKING)]
    article_id = slug + ("?" + urlencode(query) if query else "")
    if len(article_id) > MAX_ID_CHARS:  # still stable: the start of the slug and a hash of all of it
        article_id = article_id[: MAX_ID_CHARS - 17] + "#" + hashlib.sha256(article_id.encode()).hexdigest()[:16]
    return checked_id(article_id, url)


def now() -> str:
    """The current time, ISO 8601 in UTC to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def fetch_page(fetcher: Fetcher, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
    """GET a page that should be HTML (conditionally when validators are given)."""
    return fetcher.fetch(url, etag=etag, last_modified=last_modified, accept=ACCEPT_HTML)


def article_from_page(page: Fetched, feed: str | None = None) -> Article:
    """The article in a fetched HTML page.

    Its URL and id come from the page's canonical URL when that is on the same site as the page (a page cannot
    claim another site's story, and so overwrite it), else from the URL it was fetched from. Its source is the
    site's host, its date ISO (YYYY-MM-DD) when the page gives one.
    """
    if page.content_type not in HTML_TYPES:
        raise InvalidArticle(page.url, f"not an HTML page (Content-Type {page.content_type})")
    html = _decode(page)
    read = read_html(html, name=article_id_for(page.url), where=page.url, url=page.url)
    canonical = read.url if read.url and same_site(read.url, page.url) else page.url
    return read.model_copy(
        update={
            "id": article_id_for(canonical),
            "url": canonical,
            "source": site_of(canonical),
            "origin": Origin(fetched=now(), text_from="page", feed=feed),
        }
    )


def _decode(page: Fetched) -> str:
    """The page's text: the charset its headers declare, else UTF-8 with the reader's legacy fall-backs."""
    if page.charset:
        try:
            return normalise(page.body.decode(page.charset))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(page.body, page.url)
