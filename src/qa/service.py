"""The library's front door: `QA` ingests articles, answers questions and manages the index."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from pathlib import Path

from qa import events
from qa.answering.compose import compose, hits_for
from qa.answering.recency import Recency, dated, look_newer, prefer_recent, published_day
from qa.answering.support import RERANK_WEIGHT, ScoredSentence, rerank, score_sentences
from qa.articles.reading import read_bytes
from qa.backends.base import Backend
from qa.backends.factory import open_backend
from qa.embedding import Embedder, Vectors, load_embedder
from qa.errors import (
    ArticleNotFound,
    FetchFailed,
    FetchRefused,
    InvalidArticle,
    InvalidQuestion,
    InvalidURL,
    PayloadTooLarge,
)
from qa.history import check_history, followup_query
from qa.indexing.pipeline import Indexer, report_of
from qa.indexing.recorded import check_model
from qa.progress import Progress
from qa.records import (
    Answer,
    Article,
    ArticleSummary,
    ArticleText,
    Feed,
    FeedSource,
    Filters,
    IngestReport,
    PollReport,
    SearchHit,
    SourceCount,
    Sources,
    Turn,
)
from qa.retrieval.filters import intersect
from qa.retrieval.hybrid import Candidate, retrieve
from qa.retrieval.when import TimeReading, read_time
from qa.settings import Settings
from qa.sources.feeds import FeedPoller
from qa.sources.fetching import Fetcher
from qa.sources.pages import article_from_page, fetch_page
from qa.text.unicode import is_unicode

log = logging.getLogger(__name__)


class QA:
    """Question answering over an index of articles.

    >>> qa = QA(Settings(index_dir=Path("index")))
    >>> qa.ask("What does Nurly Zhol mean?").answer
    """

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self._embedder = embedder
        self._backend: Backend | None = None
        self._indexer: Indexer | None = None
        self._fetcher: Fetcher | None = None
        self._rebuilding = False
        self.read_periods = True  # a time the question names becomes a filter (qa.retrieval.when)
        self.recency = Recency()  # latest questions prefer newer articles (qa.answering.recency)

    @property
    def backend(self) -> Backend:
        """The storage back end (a FAISS folder or PostgreSQL), opened on first use (`qa list` loads no model).

        An index built with another model than the one asked for is refused (IndexMismatch), except by `rebuild`.
        """
        if self._backend is None:
            backend = open_backend(self.settings)
            if not self._rebuilding:
                try:
                    check_model(backend.meta(), self._wanted_model(), backend.label)
                except BaseException:
                    backend.close()
                    raise
            self._backend = backend
        return self._backend

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use; when a rebuild elsewhere switched the index to another, that one."""
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.model)
        if not self._rebuilding:
            recorded = self.backend.recorded_model()
            if recorded is not None and recorded != self._embedder.name:
                log.warning("the index was rebuilt with model %r: switching to it", recorded)
                self._embedder = load_embedder(recorded)
        return self._embedder

    @property
    def indexer(self) -> Indexer:
        """The ingest pipeline into this back end (what `qa ingest`, the watcher and the API write through)."""
        if self._indexer is None:
            self._indexer = Indexer(self.backend, lambda: self.embedder, self.settings)
        return self._indexer

    @property
    def fetcher(self) -> Fetcher:
        """The careful HTTP client pages and feeds are fetched with (one per QA: its per-host locks are shared)."""
        if self._fetcher is None:
            self._fetcher = Fetcher(self.settings)
        return self._fetcher

    @property
    def feed_poller(self) -> FeedPoller:
        """Follows and polls feeds into this index."""
        return FeedPoller(self.indexer, self.fetcher)

    def _wanted_model(self) -> str:
        return self._embedder.name if self._embedder is not None else self.settings.model

    # -- questions ----------------------------------------------------------------------------------
    @events.query("ask")
    def ask(
        self, question: str, top_k: int = 5, history: Sequence[Turn] | None = None, filters: Filters | None = None
    ) -> Answer:
        """An extractive answer citing its passages, or an abstention when nothing relevant is indexed.

        `history` holds the conversation's earlier turns (oldest first) when the question is a follow-up.
        `filters` limit the articles it may cite (dates, sources); a time the question names narrows them.
        """
        if not history:
            return self.ask_ranked(question, top_k, filters=filters)[0]
        settings = self.settings
        question, top_k = self._check_query(question, top_k)
        turns = check_history(history, settings.max_history_turns, settings.max_history_chars)
        timed, applied = self._read_time(question, filters)
        search_text = followup_query(timed.text, turns, settings.max_question_chars)
        ranking, sentences = self._rank(
            timed.text, top_k, search_text=search_text, filters=applied, latest=timed.latest
        )
        answer = compose(question, ranking[:top_k], sentences[:top_k], settings.min_score)
        return self._timed(answer, applied, timed)

    def ask_ranked(
        self, question: str, top_k: int = 5, depth: int = 0, filters: Filters | None = None
    ) -> tuple[Answer, list[Candidate]]:
        """The answer from the top_k passages, and the whole ranking at least `depth` deep (for evaluation)."""
        question, top_k = self._check_query(question, top_k)
        timed, applied = self._read_time(question, filters)
        ranking, sentences = self._rank(timed.text, top_k, depth, filters=applied, latest=timed.latest)
        answer = compose(question, ranking[:top_k], sentences[:top_k], self.settings.min_score)
        return self._timed(answer, applied, timed), ranking

    @events.query("search")
    def search(self, query: str, top_k: int = 5, filters: Filters | None = None) -> list[SearchHit]:
        """The passages most relevant to a query, best first, each with its best sentence highlighted.

        `filters` limit the articles (dates, sources); the query's words are searched as they are.
        """
        query, top_k = self._check_query(query, top_k)
        ranking, sentences = self._rank(query, top_k, filters=filters)
        return hits_for(ranking[:top_k], sentences[:top_k])

    def _read_time(self, question: str, filters: Filters | None) -> tuple[TimeReading, Filters | None]:
        """The question's time (qa.retrieval.when) and the filters to search with: those asked for, narrowed by it."""
        timed = read_time(question, self._published_range, parse_periods=self.read_periods)
        return timed, intersect(filters, timed.period)

    def _published_range(self) -> tuple[date, date] | None:
        found = self.backend.published_range()
        ends = [published_day(end) for end in found] if found else []
        return (ends[0], ends[1]) if len(ends) == 2 and ends[0] and ends[1] else None

    def _timed(self, answer: Answer, applied: Filters | None, timed: TimeReading) -> Answer:
        """The answer with the filters it was searched with, dated ("As of ...") when it answers a latest question."""
        if timed.latest and self.recency.enabled:
            answer = dated(answer)
        return answer.model_copy(update={"filters": applied}) if applied is not None else answer

    def _rank(
        self,
        query: str,
        top_k: int,
        depth: int = 0,
        search_text: str | None = None,
        filters: Filters | None = None,
        latest: bool = False,
    ) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
        """Hybrid retrieval (of `search_text`, by default the query), then the head re-ranked by its sentences'
        support for the query; sentences cover the head. For a latest question, the newest of the passages that
        answer nearly as well as the best leads (qa.answering.recency)."""
        settings = self.settings
        embedder = self.embedder
        vector = embedder.encode_cached([query])[0]
        search_vector = vector if search_text is None else embedder.encode_cached([search_text])[0]
        recent = latest and self.recency.enabled
        head_size = max(top_k, settings.rerank_depth, self.recency.depth if recent else 0)
        ranking = retrieve(
            self.backend,
            search_text or query,
            search_vector,
            max(head_size, depth),
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
            filters=filters,
        )
        head, rest = ranking[:head_size], ranking[head_size:]
        head, sentences = self._scored(query, vector, head)
        if recent:
            search = partial(retrieve, self.backend, search_text or query, search_vector, self.recency.depth)

            def newer_than(day: date) -> list[Candidate]:
                since = intersect(filters, Filters(since=day))
                return search(fusion=settings.fusion, dense_weight=settings.dense_weight, filters=since)

            head, sentences = look_newer(
                head, sentences, newer_than, partial(self._scored, query, vector), self.recency, settings.min_score
            )
            head, sentences = prefer_recent(head, sentences, self.recency.window, settings.min_score)
            rest = [c for c in rest if c.passage.id not in {h.passage.id for h in head}]
        return head + rest, sentences

    def _scored(
        self, query: str, vector: Vectors, candidates: list[Candidate]
    ) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
        """The candidates' sentences scored for the query, and the candidates re-ranked by their best one."""
        sentences = score_sentences(query, vector, candidates, self.embedder)
        if self.settings.rerank_depth:
            return rerank(candidates, sentences, RERANK_WEIGHT)
        return candidates, sentences

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
        """Read files and folders (default: the corpus folder) into the index; see `Indexer.ingest`."""
        roots = list(paths) if paths else [self.settings.corpus_dir]
        return self.indexer.ingest(roots, progress, prune=prune, shard=shard)

    def add(self, article: Article) -> str:
        """Add or replace one article; returns added, updated or unchanged. Visible to the next query."""
        return self.indexer.upsert([article])[article.id]

    def add_file(self, data: bytes, filename: str) -> dict[str, str]:
        """Add the article(s) in an uploaded file; returns each id's status."""
        articles = read_bytes(data, Path(filename).name)
        if len(articles) > self.settings.max_articles_per_request:
            limit = self.settings.max_articles_per_request
            raise PayloadTooLarge(f"the file holds {len(articles)} articles; the limit per upload is {limit}")
        return self.indexer.upsert(articles)

    # -- articles from the web ----------------------------------------------------------------------
    def add_url(self, url: str) -> dict[str, str]:
        """Fetch a page and add (or update) its article; the id is its canonical URL's slug."""
        article = article_from_page(fetch_page(self.fetcher, url))
        return {article.id: self.add(article)}

    def ingest_urls(self, urls: Sequence[str], progress: Progress | None = None) -> IngestReport:
        """Fetch pages into the index; a page that cannot be fetched or read is reported and the rest go on."""
        if progress is not None:
            progress.total = len(urls)
        statuses: dict[str, str] = {}
        skipped: list[str] = []
        for url in urls:
            try:
                statuses.update(self.add_url(url))
            except (InvalidURL, FetchRefused, FetchFailed, InvalidArticle) as e:
                skipped.append(str(e) if url in str(e) else f"{url}: {e}")
            if progress is not None:
                progress.update(1)
        return report_of(statuses, skipped)

    def follow_feed(self, url: str) -> tuple[Feed, int]:
        """Follow an RSS or Atom feed (fetched once to check it); returns it and how many items it lists."""
        return self.feed_poller.add(url)

    def unfollow_feed(self, url: str) -> None:
        """Stop following a feed; the articles it brought stay."""
        self.feed_poller.remove(url)

    def feeds(self) -> list[Feed]:
        """The followed feeds, with their last poll."""
        return self.backend.feeds()

    def poll_feeds(self, progress: Callable[[Feed], Progress | None] | None = None) -> list[PollReport]:
        """Poll every followed feed once: new and changed items are fetched and indexed."""
        return self.feed_poller.poll_all(progress)

    def sources(self) -> Sources:
        """Where the articles come from: sites, corpus folders and feeds, with counts and newest dates."""
        counts = self.backend.source_counts()
        feeds = {f.url: f for f in self.backend.feeds()}
        return Sources(
            sites=counts.sites,
            folders=_by_folder(counts.folders, self.settings.allowed_roots()),
            feeds=[
                FeedSource(
                    **c.model_dump(),
                    title=feeds[c.name].title,
                    polled=feeds[c.name].polled,
                    last_result=feeds[c.name].last_result,
                )
                for c in counts.feeds
                if c.name in feeds
            ],
        )

    def delete(self, article_id: str) -> None:
        """Remove an article; it is never cited again."""
        if not self.indexer.delete(article_id):
            raise ArticleNotFound(article_id)

    def article(self, article_id: str) -> Article:
        """One article with its full text."""
        found = self.backend.article(article_id)
        if found is None:
            raise ArticleNotFound(article_id)
        return found

    def article_text(self, article_id: str, start: int = 0, limit: int | None = None) -> ArticleText:
        """One article with a page of its text: at most `limit` (at most QA_MAX_TEXT_CHARS) characters from `start`."""
        article = self.article(article_id)
        limit = min(limit or self.settings.max_text_chars, self.settings.max_text_chars)
        length = len(article.text)
        start = min(start, length)
        end = min(start + limit, length)
        page = article.model_dump() | {"text": article.text[start:end]}
        return ArticleText(**page, text_start=start, text_length=length, next_start=end if end < length else None)

    def articles(
        self, offset: int = 0, limit: int = 50, filters: Filters | None = None
    ) -> tuple[int, list[ArticleSummary]]:
        """A page of the articles (those the filters allow; newest first) and their total count."""
        return self.backend.summaries(offset, limit, filters)

    def counts(self) -> tuple[int, int]:
        """How many articles and passages are indexed."""
        return self.backend.counts()

    def mean_passage_words(self) -> float:
        """The mean length of the indexed passages, in words (evaluation reports it beside hit rates)."""
        texts = [text for _, text in self.backend.passage_texts()]
        return sum(len(t.split()) for t in texts) / len(texts) if texts else 0.0

    def close(self) -> None:
        """Release the back end's connections."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None
            self._indexer = None

    def rebuild(self, progress: Progress | None = None) -> int:
        """Re-chunk/re-embed what the settings changed and write a fresh vector index; returns the passages.

        The settings' model is used whatever the index was built with: that is how an index moves to a new model.
        """
        self._rebuilding = True
        try:
            return self.indexer.rebuild(progress)
        finally:
            self._rebuilding = False


def _by_folder(folders: Sequence[SourceCount], roots: Sequence[Path]) -> list[SourceCount]:
    """Counts per folder named from its corpus root ("corpus/business"), never as an absolute path."""
    merged: dict[str, SourceCount] = {}
    for count in folders:
        folder = Path(count.name.rstrip("/") or "/")
        root = next((r for r in roots if folder.is_relative_to(r)), None)
        name = (Path(root.name) / folder.relative_to(root)).as_posix() if root is not None else folder.name
        if name in merged:
            before = merged[name]
            newest = max((d for d in (before.newest, count.newest) if d), default=None)
            count = SourceCount(name=name, articles=before.articles + count.articles, newest=newest)
        merged[name] = count.model_copy(update={"name": name})
    return sorted(merged.values(), key=lambda c: c.name)
