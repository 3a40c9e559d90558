"""The records that flow through the pipeline: articles, passages, hits, citations and answers."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class Origin(BaseModel):
    """Where a fetched article's text came from (articles read from files or uploaded have none)."""

    fetched: str = Field(description="When the text was fetched (ISO 8601, UTC).")
    text_from: Literal["page", "feed summary"] = Field(
        description="'page': read from the page; 'feed summary': the page could not be fetched, the feed's own"
        " summary stands in (see `reason`)."
    )
    feed: str | None = Field(None, description="The feed the article was found in, if any.")
    reason: str | None = Field(None, description="Why the page could not be used, when text_from is 'feed summary'.")


class Article(BaseModel):
    """One cleaned article: the text passages and citations point into."""

    id: str = Field(description="Stable id: the JSON id, a slug of the URL, or the path in the corpus.")
    title: str = ""
    text: str
    url: str | None = None
    published: str | None = Field(None, description="Publication date, ISO 8601 when it could be parsed.")
    author: str | None = None
    source: str | None = Field(
        None, description="Where it came from: a file path, a site name, or for fetched articles the site's host."
    )
    origin: Origin | None = Field(None, description="For articles fetched from the web: when, and from what.")

    def content_hash(self) -> str:
        """Hash of everything that ends up in the index, so an unchanged article can be skipped."""
        payload = self.model_dump(exclude={"source", "origin"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ArticleText(Article):
    """An article with a page of its text: `text` is the article's text from `text_start` on."""

    text_start: int = Field(0, description="Offset of `text`'s first character in the whole text.")
    text_length: int = Field(description="Length of the whole text, in characters.")
    next_start: int | None = Field(None, description="Where the next page of text starts; null on the last page.")


class ArticleSummary(BaseModel):
    """An article without its text, as listed by `qa list` and GET /api/articles."""

    id: str
    title: str
    url: str | None
    published: str | None
    author: str | None
    source: str | None
    passages: int


class ArticlePage(BaseModel):
    """A page of article summaries, newest first, with the total (GET /api/articles, the MCP tool)."""

    total: int
    offset: int
    limit: int
    articles: list[ArticleSummary]


class Passage(BaseModel):
    """A span of an article's text small enough for the model to read whole."""

    article_id: str
    ordinal: int
    start: int = Field(description="Offset of the passage's first character in the article text.")
    end: int = Field(description="Offset just past the passage's last character.")
    text: str


class SearchHit(BaseModel):
    """A retrieved passage with where it sits in its article and its supporting sentence."""

    article_id: str
    title: str
    url: str | None
    published: str | None
    passage: str
    start: int
    end: int
    highlight: tuple[int, int] = Field(description="The supporting sentence's span in the article text.")
    score: float
    source: str | None = Field(None, description="The article's source: its site, or where its file came from.")


class SearchResults(BaseModel):
    """Passages for a query, best first (GET /api/search, the MCP tool)."""

    results: list[SearchHit]


class Citation(SearchHit):
    """A hit cited in an answer as [n]."""

    n: int


class Turn(BaseModel):
    """An earlier turn of a conversation, as the client holds it: the question, its answer, the articles cited."""

    question: str = Field(description="The question as asked.", json_schema_extra={"minLength": 1})
    answer: str = Field("", description="The answer given (the server's own, or any text).")
    article_ids: list[str] = Field(default=[], description="The articles that turn cited, when known.")


class Filters(BaseModel):
    """Which articles a question or search may use: published from `since` to `until` (inclusive), from `source`.

    An article without a parsable (ISO) date never matches a date filter. `source` holds names as GET /api/sources
    lists them (a site, a folder of files, a feed URL); an article from any of them matches. Empty: no limit.
    """

    since: date | None = Field(None, description="The earliest publication date (YYYY-MM-DD), inclusive.")
    until: date | None = Field(None, description="The latest publication date (YYYY-MM-DD), inclusive.")
    source: list[str] = Field(
        default_factory=list, description="Sites, folders or feed URLs (as GET /api/sources names them); any of them."
    )

    def active(self) -> bool:
        """True when it limits anything."""
        return self.since is not None or self.until is not None or bool(self.source)


class Answer(BaseModel):
    """An extractive answer with its citations, or an abstention."""

    question: str
    query: str = Field(
        "", description="The self-contained text that was searched: the question itself when it stands alone."
    )
    answer: str
    abstained: bool
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description="Probability (0..1, calibrated) that the answer's first sentence holds a right answer; "
        "about 0.7 and above: likely right, below QA_MIN_CONFIDENCE: withheld (abstained).",
    )
    citations: list[Citation]
    filters: Filters | None = Field(
        None,
        description="The filters the answer was searched with: those asked for, narrowed by a time the question"
        " names ('in June 1987', 'last month'); null when none applied.",
    )


class IngestReport(BaseModel):
    """What an ingest run did."""

    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    deleted: list[str] = []
    skipped: list[str] = Field(default_factory=list, description="One-line messages for files that failed.")


class Feed(BaseModel):
    """A followed RSS or Atom feed and what its last poll found."""

    url: str
    title: str = ""
    added: str = Field(description="When it was added (ISO 8601, UTC).")
    polled: str | None = Field(None, description="When it was last polled (ISO 8601, UTC).")
    last_result: str | None = Field(None, description="The last poll's summary line, or its error.")
    etag: str | None = Field(None, description="The feed's ETag at the last poll (sent back as If-None-Match).")
    last_modified: str | None = Field(None, description="Its Last-Modified (sent back as If-Modified-Since).")


class PollReport(BaseModel):
    """What one poll of one feed did to its items."""

    feed: str
    not_modified: bool = Field(False, description="The feed answered 304: nothing was read.")
    new: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    failed: list[str] = Field(default_factory=list, description="One-line messages for items that could not be read.")
    error: str | None = Field(None, description="Why the feed itself could not be polled.")

    def outcome(self) -> str:
        """New, updated, unchanged and failed items, or the error."""
        if self.error:
            return f"failed: {self.error}"
        counts = (
            f"{len(self.new)} new, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.failed)} failed"
        )
        return counts + (" (not modified)" if self.not_modified else "")

    def summary(self) -> str:
        """One line: the feed and its outcome."""
        return f"{self.feed}: {self.outcome()}"


class SourceCount(BaseModel):
    """A site, folder or feed with how many articles it gave and its newest publication date."""

    name: str = Field(description="A site (host or name), a corpus folder, or a feed URL.")
    articles: int
    newest: str | None = Field(None, description="The newest ISO publication date among its articles.")


class FeedSource(SourceCount):
    """A followed feed in GET /api/sources."""

    title: str
    polled: str | None
    last_result: str | None


class Sources(BaseModel):
    """Where the indexed articles come from: sites, corpus folders and feeds."""

    sites: list[SourceCount] = Field(
        description="Articles not read from files, by `source`: the host for fetched and feed articles."
    )
    folders: list[SourceCount] = Field(description="Articles read from files, by folder (relative to its corpus root).")
    feeds: list[FeedSource] = Field(description="Every followed feed, with the articles found in it.")
