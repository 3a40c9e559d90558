"""The library's front door: `QA` ingests articles, answers questions and manages the index."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from qa.answer import compose, hits_for, score_sentences
from qa.embedding import Embedder, Vectors
from qa.errors import ArticleNotFound, InvalidArticle, InvalidQuestion
from qa.index import Index, Progress
from qa.reading import iter_article_files, read_bytes, read_file
from qa.records import Answer, Article, ArticleSummary, IngestReport, SearchHit
from qa.search import Candidate, retrieve
from qa.settings import Settings

log = logging.getLogger(__name__)


class QA:
    """Question answering over an index of articles.

    >>> qa = QA(Settings(index_dir=Path("index")))
    >>> qa.ask("What does Nurly Zhol mean?").answer
    """

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        """The index, opened on first use (so `qa list` never loads the model)."""
        if self._index is None:
            self._index = Index(self.settings, self._embedder)
        return self._index

    # -- questions ----------------------------------------------------------------------------------
    def ask(self, question: str, top_k: int = 5) -> Answer:
        """An extractive answer citing its passages, or an abstention when nothing relevant is indexed."""
        return self.ask_ranked(question, top_k)[0]

    def ask_ranked(self, question: str, top_k: int = 5, depth: int | None = None) -> tuple[Answer, list[Candidate]]:
        """The answer from the top_k passages, and the retrieval ranking `depth` deep (for evaluation)."""
        question, top_k = self._check_query(question, top_k)
        ranking, vector = self._retrieve(question, max(top_k, depth or top_k))
        candidates = ranking[:top_k]
        sentences = score_sentences(question, vector, candidates, self.index.embedder)
        return compose(question, candidates, sentences, self.settings.min_score), ranking

    def search(self, query: str, top_k: int = 5) -> list[SearchHit]:
        """The passages most relevant to a query, best first, each with its best sentence highlighted."""
        query, top_k = self._check_query(query, top_k)
        candidates, vector = self._retrieve(query, top_k)
        return hits_for(candidates, score_sentences(query, vector, candidates, self.index.embedder))

    def _retrieve(self, query: str, top_k: int) -> tuple[list[Candidate], Vectors]:
        vector = self.index.embedder.encode_cached([query])[0]
        return retrieve(self.index, query, vector, top_k), vector

    def _check_query(self, text: str, top_k: int) -> tuple[str, int]:
        text = " ".join(text.split())
        if not text:
            raise InvalidQuestion("the question is empty")
        if len(text) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"the question is {len(text)} characters long; the limit is {self.settings.max_question_chars}"
            )
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidQuestion(f"top_k must be between 1 and {self.settings.max_top_k}, not {top_k}")
        return text, top_k

    # -- articles -----------------------------------------------------------------------------------
    def ingest(
        self, paths: Sequence[Path] | None = None, progress: Progress | None = None, *, prune: bool = False
    ) -> IngestReport:
        """Read files and folders into the index; unreadable files are reported and the rest go on.

        With `prune`, articles whose files are no longer under the given paths are removed.
        """
        roots = list(paths) if paths else [self.settings.corpus_dir]
        report = IngestReport()
        articles: list[Article] = []
        for path in roots:
            if not path.exists():
                report.skipped.append(f"{path}: no such file or folder")
        index_dir = self.settings.index_dir.resolve()
        for file, root in iter_article_files(p for p in roots if p.exists()):
            if file.resolve().is_relative_to(index_dir):
                continue  # a corpus folder may hold the index itself
            try:
                articles.extend(read_file(file, root))
            except InvalidArticle as e:
                report.skipped.append(str(e))
                log.warning("skipped %s", e)
        if progress is not None:
            progress.total = len(articles)
        statuses = self.index.upsert(articles, progress)
        for article_id, status in statuses.items():
            getattr(report, status).append(article_id)
        if prune:
            for article_id in sorted(set(self.index.store.content_hashes()) - set(statuses)):
                self.index.delete(article_id)
                report.deleted.append(article_id)
        return report

    def add(self, article: Article) -> str:
        """Add or replace one article; returns added, updated or unchanged. Visible to the next query."""
        return self.index.upsert([article])[article.id]

    def add_file(self, data: bytes, filename: str) -> dict[str, str]:
        """Add the article(s) in an uploaded file; returns each id's status."""
        return self.index.upsert(read_bytes(data, Path(filename).name))

    def delete(self, article_id: str) -> None:
        """Remove an article; it is never cited again."""
        if not self.index.delete(article_id):
            raise ArticleNotFound(article_id)

    def article(self, article_id: str) -> Article:
        """One article with its full text."""
        found = self.index.store.article(article_id)
        if found is None:
            raise ArticleNotFound(article_id)
        return found

    def articles(self, offset: int = 0, limit: int = 50) -> tuple[int, list[ArticleSummary]]:
        """A page of articles (newest first) and the total count."""
        return self.index.store.summaries(offset, limit)

    def counts(self) -> tuple[int, int]:
        """How many articles and passages are indexed."""
        return self.index.store.counts()

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk/re-embed what the settings changed and write a fresh FAISS generation."""
        if self._index is None:
            self._index = Index(self.settings, self._embedder, rebuilding=True)
        return self._index.rebuild(progress)
