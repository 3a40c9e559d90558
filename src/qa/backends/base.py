"""The interface between qa and a storage back end: store, search and report; nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qa.embedding import Vectors
from qa.records import Article, ArticleSummary, Passage


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


@dataclass(frozen=True)
class ChunkedArticle:
    """An article ready to store: its passages and the hash of each passage's text (the key of its vectors)."""

    article: Article
    passages: list[Passage]
    text_hashes: list[str]


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
    def dense(self, query_vector: Vectors, k: int) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest passages."""
        ...

    def similarity(self, query_vector: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of these passages (missing ones left out)."""
        ...

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        """(passage id, BM25-style score; higher is better) of the k best lexical matches."""
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

    def summaries(self, offset: int, limit: int) -> tuple[int, list[ArticleSummary]]:
        """A page of articles (newest first) and the total."""
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

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored content hash of each of these articles that exists."""
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

    def close(self) -> None:
        """Release connections and files."""
        ...
