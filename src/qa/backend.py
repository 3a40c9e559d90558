"""The storage-and-search back end behind `QA`: FAISS + SQLite in a folder, or PostgreSQL + pgvector."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from qa.embedding import Embedder, Vectors
from qa.records import Article, ArticleSummary
from qa.settings import Settings
from qa.store import PassageRow


class Progress(Protocol):
    """A progress bar (tqdm fits): its total can be set, and it advances by the work just finished."""

    total: float | None

    def update(self, n: float = 1) -> bool | None:
        """Advance by n."""
        ...


class Backend(Protocol):
    """What `QA` and `search.retrieve` need from a store: the two retrieval legs, passages, articles, writes."""

    @property
    def embedder(self) -> Embedder:
        """The model passages and queries are embedded with."""
        ...

    @property
    def meta(self) -> dict[str, str]:
        """Model, dimension, chunking and format the store was built with."""
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

    def passage_texts(self) -> list[str]:
        """Every passage's text (evaluation reports their mean length)."""
        ...

    # -- articles -----------------------------------------------------------------------------------
    def article(self, article_id: str) -> Article | None:
        """One article with its text, or None."""
        ...

    def summaries(self, offset: int, limit: int) -> tuple[int, list[ArticleSummary]]:
        """A page of articles (newest first) and the total."""
        ...

    def counts(self) -> tuple[int, int]:
        """Number of articles and of passages."""
        ...

    def files(self) -> dict[str, str]:
        """Article id to the file it was read from, for articles read from files."""
        ...

    # -- writing ------------------------------------------------------------------------------------
    def upsert(
        self,
        articles: Iterable[Article],
        progress: Progress | None = None,
        batch: int = 32,
        files: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Add new articles and replace changed ones; returns each id's status (added/updated/unchanged)."""
        ...

    def delete(self, article_id: str) -> bool:
        """Remove an article; False when there was none with this id."""
        ...

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk and re-embed what the settings changed; returns the number of passages indexed."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def open_backend(settings: Settings, embedder: Embedder | None = None, *, rebuilding: bool = False) -> Backend:
    """The back end QA_BACKEND names: "faiss" (a folder, the default) or "postgres" (QA_DATABASE_URL)."""
    if settings.backend == "postgres":
        from qa.postgres import PostgresBackend

        return PostgresBackend(settings, embedder, rebuilding=rebuilding)
    from qa.index import Index

    return Index(settings, embedder, rebuilding=rebuilding)
