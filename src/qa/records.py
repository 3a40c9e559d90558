"""The records that flow through the pipeline: articles, passages, hits, citations and answers."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field


class Article(BaseModel):
    """One cleaned article: the text passages and citations point into."""

    id: str = Field(description="Stable id: the JSON id, a slug of the URL, or the path in the corpus.")
    title: str = ""
    text: str
    url: str | None = None
    published: str | None = Field(None, description="Publication date, ISO 8601 when it could be parsed.")
    author: str | None = None
    source: str | None = Field(None, description="Where it came from: a file path or a site name.")

    def content_hash(self) -> str:
        """Hash of everything that ends up in the index, so an unchanged article can be skipped."""
        payload = self.model_dump(exclude={"source"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ArticleSummary(BaseModel):
    """An article without its text, as listed by `qa list` and GET /api/articles."""

    id: str
    title: str
    url: str | None
    published: str | None
    author: str | None
    source: str | None
    passages: int


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


class Citation(SearchHit):
    """A hit cited in an answer as [n]."""

    n: int


class Turn(BaseModel):
    """An earlier turn of a conversation, as the client holds it: the question, its answer, the articles cited."""

    question: str = Field(description="The question as asked.", json_schema_extra={"minLength": 1})
    answer: str = Field("", description="The answer given (the server's own, or any text).")
    article_ids: list[str] = Field(default=[], description="The articles that turn cited, when known.")


class Answer(BaseModel):
    """An extractive answer with its citations, or an abstention."""

    question: str
    query: str = Field(
        "", description="The self-contained text that was searched: the question itself when it stands alone."
    )
    answer: str
    abstained: bool
    citations: list[Citation]


class IngestReport(BaseModel):
    """What an ingest run did."""

    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    deleted: list[str] = []
    skipped: list[str] = Field(default_factory=list, description="One-line messages for files that failed.")
