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


class Answer(BaseModel):
    """An extractive answer with its citations, or an abstention."""

    question: str
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


class Turn(BaseModel):
    """An earlier exchange of a conversation: the question, the server's answer and the articles it cited."""

    question: str
    answer: str = ""
    article_ids: list[str] = Field(default_factory=list, description="The articles the answer cited, in order.")
