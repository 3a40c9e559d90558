"""The interface between qa and a storage back end: store, search and report; nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qa.embedding import Vectors
from qa.records import Article, ArticleSummary, Feed, Filters, Origin, Passage, SourceCount


@dataclass(frozen=True)
class PassageRow:
    """A stored passage with the article fields a citation needs."""

    id: int
    article_id: str
    title: str
    url: str | None
    published: str | None
    start: int
    end: int
    text: str
    sentences: Vectors | None = field(default=None, compare=False, repr=False)  # its sentences' vectors, if stored
    source: str | None = None  # the article's source (a site, a file's source field)


@dataclass(frozen=True)
class ChunkedArticle:
    """An article ready to store: its passages and the hash of each passage's text (the key of its vectors)."""

    article: Article
    passages: list[Passage]
    text_hashes: list[str]


@dataclass(frozen=True)
class Stored:
    """What the store holds of an article: the hash of its content, and the file it was read from (None: the API)."""

    content_hash: str
    file: str | None


@dataclass(frozen=True)
class FeedItem:
    """What qa remembers of one item of a feed, to tell new, changed and unchanged items apart."""

    key: str  # the item's GUID, else its link
    link: str | None
    entry_hash: str  # of the item's title, link, summary and dates as the feed gave them
    article_id: str | None  # the article it became (None: it could not be read)
    page_etag: str | None = None  # the page's validators, for a conditional GET when the item changes
    page_last_modified: str | None = None


@dataclass(frozen=True)
class SourceCounts:
    """Articles per site (not from files), per folder of the files read (absolute), and per feed URL."""

    sites: list[SourceCount]
    folders: list[SourceCount]
    feeds: list[SourceCount]


# SQL shared by the back ends: the newest publication date counts only ISO dates (files may hold other text).
ISO_DATE_SQLITE = "published GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
ISO_DATE_POSTGRES = "published ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'"


ARTICLE_KEYS = ("id", "title", "text", "url", "published", "author", "source", "origin")
ARTICLE_COLUMNS = ", ".join(ARTICLE_KEYS)


def origin_json(article: Article) -> str | None:
    """An article's origin as stored (JSON text), or None."""
    return article.origin.model_dump_json() if article.origin is not None else None


def article_from_row(row: Sequence[Any]) -> Article:
    """An article from a row of ARTICLE_COLUMNS (the origin stored as JSON text)."""
    values = dict(zip(ARTICLE_KEYS, row, strict=True))
    origin = values.pop("origin")
    return Article(**values, origin=Origin.model_validate_json(origin) if origin else None)


def sentence_blob(sentences: Vectors) -> bytes:
    """Sentence vectors as stored: float16 rows."""
    return sentences.astype(np.float16).tobytes()


def sentence_matrix(blob: bytes | None, dimension: int | None) -> Vectors | None:
    """Sentence vectors stored as float16 rows (None when the store has none for this passage)."""
    if blob is None or not dimension:
        return None
    return np.frombuffer(blob, dtype=np.float16).reshape(-1, dimension).astype(np.float32)


class Backend(Protocol):
    """What qa needs from a store: the two retrieval legs, articles and passages, and idempotent writes."""

    @property
    def label(self) -> str:
        """Where the data lives, for messages ("the index in index/", "database news on db:5432")."""
        ...

    # -- what the stored vectors were made with -----------------------------------------------------
    def meta(self) -> dict[str, str]:
        """The recorded model, dimension and chunking (empty before the first write)."""
        ...

    def recorded_model(self) -> str | None:
        """The model the stored vectors come from; cheap, so a server can follow a rebuild elsewhere."""
        ...

    def ensure_meta(self, values: Mapping[str, str]) -> dict[str, str]:
        """Record these values unless something is recorded already; returns what is recorded."""
        ...

    # -- retrieval ----------------------------------------------------------------------------------
    def dense(self, query_vector: Vectors, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages (of the articles the filters allow).

        A filter is applied inside the search: k come back whenever at least k passages match.
        """
        ...

    def similarity(self, query_vector: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of these passages (missing ones left out)."""
        ...

    def lexical(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(passage id, BM25-style score; higher is better) of the k best lexical matches the filters allow."""
        ...

    def published_range(self) -> tuple[str, str] | None:
        """The oldest and newest ISO publication dates (YYYY-MM-DD) of the articles; None when none has one."""
        ...

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        """The passages among `ids` that still exist."""
        ...

    # -- articles -----------------------------------------------------------------------------------
    def passage_ids(self, article_id: str) -> list[int]:
        """Ids of one article's passages, in order (a conversation's articles are favoured by them)."""
        ...

    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        ...

    def articles(self) -> Iterator[Article]:
        """Every stored article, in id order."""
        ...

    def summaries(self, offset: int, limit: int, filters: Filters | None = None) -> tuple[int, list[ArticleSummary]]:
        """A page of the articles the filters allow (newest first) and their total."""
        ...

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        ...

    def passage_texts(self) -> list[tuple[str, str]]:
        """(text hash, text) of every stored passage."""
        ...

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from, for articles read from files."""
        ...

    # -- writing ------------------------------------------------------------------------------------
    def writing(self) -> AbstractContextManager[None]:
        """Held around a run of writes: one writer at a time where the store needs it."""
        ...

    def stored(self, ids: Sequence[str]) -> dict[str, Stored]:
        """The content hash and file of each of these articles that exists."""
        ...

    def missing_embeddings(self, model: str, text_hashes: Set[str]) -> set[str]:
        """Which passage-text hashes have no stored vectors (passage and sentences) for this model."""
        ...

    def save_embeddings(
        self, model: str, text_hashes: Sequence[str], vectors: Vectors, sentences: Sequence[Vectors]
    ) -> None:
        """Store passage and sentence vectors by passage-text hash."""
        ...

    def save_articles(
        self, chunked: Sequence[ChunkedArticle], files: Mapping[str, str], model: str, *, force: bool = False
    ) -> dict[str, str]:
        """Write each article whose stored content differs (all, with `force`) in one transaction; each id's status.

        Statuses are "added", "updated" or "unchanged" (an unchanged article only has its file recorded). Every
        passage's vectors must be stored first (`save_embeddings`).
        """
        ...

    def set_files(self, files: Mapping[str, str]) -> None:
        """Record which file each (unchanged) article now comes from."""
        ...

    def delete(self, article_id: str) -> bool:
        """Remove an article and its passages; False when there was none with this id."""
        ...

    def finish_rebuild(self, values: Mapping[str, str]) -> int:
        """After a rebuild: record these settings, drop vectors nothing uses, re-index; returns the passages."""
        ...

    # -- feeds and sources ---------------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        """Every followed feed, in URL order."""
        ...

    def save_feed(self, feed: Feed) -> None:
        """Add a feed or record its latest poll (validators, title, time, result)."""
        ...

    def remove_feed(self, url: str) -> bool:
        """Stop following a feed and forget its items (their articles stay); False when it was not followed."""
        ...

    def feed_items(self, url: str) -> list[FeedItem]:
        """What is remembered of a feed's items."""
        ...

    def save_feed_items(self, url: str, items: Sequence[FeedItem]) -> None:
        """Remember these items of a feed (replacing what was remembered under the same keys)."""
        ...

    def source_counts(self) -> SourceCounts:
        """Articles and newest date per site, per folder of files and per feed."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
