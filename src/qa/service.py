"""The library's front door: `QA` ingests articles, answers questions and manages the index."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from qa.answer import RERANK_WEIGHT, ScoredSentence, compose, hits_for, rerank, score_sentences
from qa.backend import Backend, Progress, open_backend
from qa.embedding import Embedder
from qa.errors import ArticleNotFound, InvalidArticle, InvalidQuestion, PayloadTooLarge
from qa.history import check_history, followup_query
from qa.index import Index
from qa.reading import is_unicode, iter_article_files, read_bytes, read_file
from qa.records import Answer, Article, ArticleSummary, IngestReport, SearchHit, Turn
from qa.search import Candidate, retrieve
from qa.settings import Settings

log = logging.getLogger(__name__)


def in_shard(article_id: str, shard: tuple[int, int]) -> bool:
    """Whether an article belongs to shard i of n: a stable hash of its id, the same on every machine."""
    i, n = shard
    return int.from_bytes(hashlib.sha256(article_id.encode()).digest()[:8], "big") % n == i


class QA:
    """Question answering over an index of articles.

    >>> qa = QA(Settings(index_dir=Path("index")))
    >>> qa.ask("What does Nurly Zhol mean?").answer
    """

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        """The store (QA_BACKEND: FAISS folder or PostgreSQL), opened on first use (`qa list` loads no model)."""
        if self._backend is None:
            self._backend = open_backend(self.settings, self._embedder)
        return self._backend

    @property
    def index(self) -> Index:
        """The FAISS back end itself, for what only it has (checkpoints, the writer lock, consistency checks)."""
        backend = self.backend
        if not isinstance(backend, Index):
            raise TypeError(f"QA_BACKEND={self.settings.backend} has no FAISS index")
        return backend

    # -- questions ----------------------------------------------------------------------------------
    def ask(self, question: str, top_k: int = 5, history: Sequence[Turn] | None = None) -> Answer:
        """An extractive answer citing its passages, or an abstention when nothing relevant is indexed.

        `history` holds the conversation's earlier turns (oldest first) when the question is a follow-up.
        """
        if not history:
            return self.ask_ranked(question, top_k)[0]
        settings = self.settings
        question, top_k = self._check_query(question, top_k)
        turns = check_history(history, settings.max_history_turns, settings.max_history_chars)
        search_text = followup_query(question, turns, settings.max_question_chars)
        ranking, sentences = self._rank(question, top_k, search_text=search_text)
        return compose(question, ranking[:top_k], sentences[:top_k], settings.min_score)

    def ask_ranked(self, question: str, top_k: int = 5, depth: int = 0) -> tuple[Answer, list[Candidate]]:
        """The answer from the top_k passages, and the whole ranking at least `depth` deep (for evaluation)."""
        question, top_k = self._check_query(question, top_k)
        ranking, sentences = self._rank(question, top_k, depth)
        answer = compose(question, ranking[:top_k], sentences[:top_k], self.settings.min_score)
        return answer, ranking

    def search(self, query: str, top_k: int = 5) -> list[SearchHit]:
        """The passages most relevant to a query, best first, each with its best sentence highlighted."""
        query, top_k = self._check_query(query, top_k)
        ranking, sentences = self._rank(query, top_k)
        return hits_for(ranking[:top_k], sentences[:top_k])

    def _rank(
        self, query: str, top_k: int, depth: int = 0, search_text: str | None = None
    ) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
        """Hybrid retrieval (of `search_text`, by default the query), then the head re-ranked by its sentences'
        support for the query; sentences cover the head."""
        settings = self.settings
        embedder = self.backend.embedder
        vector = embedder.encode_cached([query])[0]
        search_vector = vector if search_text is None else embedder.encode_cached([search_text])[0]
        head_size = max(top_k, settings.rerank_depth)
        ranking = retrieve(
            self.backend,
            search_text or query,
            search_vector,
            max(head_size, depth),
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
        )
        head, rest = ranking[:head_size], ranking[head_size:]
        sentences = score_sentences(query, vector, head, embedder)
        if settings.rerank_depth:
            head, sentences = rerank(head, sentences, RERANK_WEIGHT)
        return head + rest, sentences

    def _check_query(self, text: str, top_k: int) -> tuple[str, int]:
        if len(text) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"the question is {len(text)} characters long; the limit is {self.settings.max_question_chars}"
            )
        if not is_unicode(text):
            raise InvalidQuestion("the question is not valid Unicode text (it holds a lone surrogate)")
        text = " ".join(text.split())
        if not text:
            raise InvalidQuestion("the question is empty")
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidQuestion(f"top_k must be between 1 and {self.settings.max_top_k}, not {top_k}")
        return text, top_k

    # -- articles -----------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        progress: Progress | None = None,
        *,
        prune: bool = False,
        shard: tuple[int, int] | None = None,
    ) -> IngestReport:
        """Read files and folders into the index; unreadable files are reported and the rest go on.

        With `prune`, articles read earlier from files under these paths whose files are gone (or no longer
        hold them) are removed; articles added through the API are never pruned. With `shard` (i, n), only
        the articles whose id hashes to shard i of n are written, so n workers can split one corpus.
        """
        roots = list(paths) if paths else [self.settings.corpus_dir]
        report = IngestReport()
        articles, files = self.read(roots, report)
        if shard is not None:
            articles = [a for a in articles if in_shard(a.id, shard)]
        if progress is not None:
            progress.total = len(articles)
        statuses = self.backend.upsert(articles, progress, files=files)
        for article_id, status in statuses.items():
            getattr(report, status).append(article_id)
        if prune:
            folders = [str(root.resolve()) for root in roots]
            for article_id, file in sorted(self.backend.files().items()):
                inside = any(file == f or file.startswith(f.rstrip("/") + "/") for f in folders)
                mine = shard is None or in_shard(article_id, shard)
                if inside and mine and article_id not in statuses:
                    self.backend.delete(article_id)
                    report.deleted.append(article_id)
        return report

    def read(self, roots: Sequence[Path], report: IngestReport) -> tuple[list[Article], dict[str, str]]:
        """The articles in files and folders, and the file each came from; failures go to the report."""
        for path in roots:
            if not path.exists():
                report.skipped.append(f"{path}: no such file or folder")
        return self.read_files(iter_article_files(p for p in roots if p.exists()), report, trusted=roots)

    def read_files(
        self, pairs: Iterable[tuple[Path, Path]], report: IngestReport, trusted: Sequence[Path] = ()
    ) -> tuple[list[Article], dict[str, str]]:
        """The articles in (file, folder its id is relative to) pairs, and the file each came from.

        A file is read only when its real path (symlinks and `..` resolved) lies inside QA_CORPUS_ROOTS or one of
        the `trusted` paths the operator named; anything else is skipped with a warning.
        """
        articles: list[Article] = []
        files: dict[str, str] = {}
        index_dir = self.settings.index_dir.resolve()
        allowed = [*self.settings.allowed_roots(), *(p.resolve() for p in trusted)]
        for file, root in pairs:
            resolved = file.resolve()
            if resolved.is_relative_to(index_dir):
                continue  # a corpus folder may hold the index itself
            if not any(resolved.is_relative_to(r) for r in allowed):
                message = f"{file}: leads outside the corpus roots (to {resolved}); not read"
                report.skipped.append(message)
                log.warning("skipped %s", message)
                continue
            try:
                found = read_file(file, root)
            except InvalidArticle as e:
                report.skipped.append(str(e))
                log.warning("skipped %s", e)
                continue
            articles.extend(found)
            files.update((a.id, str(resolved)) for a in found)
        return articles, files

    def add(self, article: Article) -> str:
        """Add or replace one article; returns added, updated or unchanged. Visible to the next query."""
        return self.backend.upsert([article])[article.id]

    def add_file(self, data: bytes, filename: str) -> dict[str, str]:
        """Add the article(s) in an uploaded file; returns each id's status."""
        articles = read_bytes(data, Path(filename).name)
        if len(articles) > self.settings.max_articles_per_request:
            limit = self.settings.max_articles_per_request
            raise PayloadTooLarge(f"the file holds {len(articles)} articles; the limit per upload is {limit}")
        return self.backend.upsert(articles)

    def delete(self, article_id: str) -> None:
        """Remove an article; it is never cited again."""
        if not self.backend.delete(article_id):
            raise ArticleNotFound(article_id)

    def article(self, article_id: str) -> Article:
        """One article with its full text."""
        found = self.backend.article(article_id)
        if found is None:
            raise ArticleNotFound(article_id)
        return found

    def articles(self, offset: int = 0, limit: int = 50) -> tuple[int, list[ArticleSummary]]:
        """A page of articles (newest first) and the total count."""
        return self.backend.summaries(offset, limit)

    def counts(self) -> tuple[int, int]:
        """How many articles and passages are indexed."""
        return self.backend.counts()

    def close(self) -> None:
        """Release the back end's connections."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk/re-embed what the settings changed and write a fresh FAISS generation (or HNSW index)."""
        if self._backend is None:
            self._backend = open_backend(self.settings, self._embedder, rebuilding=True)
        return self._backend.rebuild(progress)
