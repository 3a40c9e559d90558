"""The library's front door: `QA` ingests articles, answers questions and manages the index."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from qa import events
from qa.answering.compose import compose, hits_for
from qa.answering.features import SentenceTable, sentence_table
from qa.answering.ranking import ScoredHead, score_head
from qa.answering.recency import RELEVANT, Recency, dated, look_newer, newest_near_best, promote, published_day
from qa.answering.scorer import AnswerScorer, load_scorer
from qa.answering.support import ScoredSentence
from qa.articles.reading import read_bytes
from qa.backends.base import Backend
from qa.backends.factory import open_backend
from qa.conversation.context import ConversationContext, ConversationWeights, build_context
from qa.conversation.followup import stays_on_thread
from qa.embedding import Embedder, load_embedder
from qa.errors import (
    ArticleNotFound,
    FetchFailed,
    FetchRefused,
    InvalidArticle,
    InvalidQuestion,
    InvalidURL,
    PayloadTooLarge,
)
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


@dataclass(frozen=True)
class Ranked:
    """A ranking for a question: the scored head (its confidence), the passages and their sentences as they are
    cited (for a latest question, the newest near-best first), and the ranking below the head."""

    head: ScoredHead
    candidates: list[Candidate]
    sentences: list[list[ScoredSentence]]
    rest: list[Candidate]


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
        self.conversation_weights = ConversationWeights()
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
        self,
        question: str,
        top_k: int = 5,
        history: Sequence[Turn] | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """An extractive answer citing its passages, or an abstention when nothing relevant is indexed.

        `history` holds the conversation's earlier turns, oldest first: a follow-up ("In what city?", "And what
        about its gas?") is then searched in their context, and `Answer.query` says what was searched.
        `filters` limit the articles it may cite (dates, sources); a time the question names narrows them.
        """
        return self.ask_ranked(question, top_k, history=history, filters=filters)[0]

    def ask_ranked(
        self,
        question: str,
        top_k: int = 5,
        depth: int = 0,
        history: Sequence[Turn] | None = None,
        min_confidence: float | None = None,
        filters: Filters | None = None,
    ) -> tuple[Answer, list[Candidate]]:
        """The answer from the top_k passages, and the whole ranking at least `depth` deep (for evaluation).

        `min_confidence` overrides the service's threshold (evaluation asks with 0 to judge every answer).
        """
        question, top_k = self._check_query(question, top_k)
        timed, applied = self._read_time(question, filters)
        context = self.context(timed.text, self._check_history(history or ()))
        ranked = self._rank(timed.text, top_k, depth, context, applied, latest=timed.latest)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        if context.prior and not context.changed_topic:
            # "Where?", "For how long?": a follow-up has too few words of its own for the confidence model (trained
            # on questions that stand alone) to judge; the thread vouches for its articles, so it is answered from
            # them with its (low) confidence shown. So is a question that stands alone but stays on the thread; one
            # on another subject is judged as if asked alone.
            thread = [c.passage.text for c in ranked.candidates[:top_k] if c.passage.article_id in context.prior]
            if not context.standalone or stays_on_thread(timed.text, thread):
                threshold = 0.0
        confidence = ranked.head.confidence(top_k)
        candidates, sentences = ranked.candidates[:top_k], ranked.sentences[:top_k]
        answer = compose(question, candidates, sentences, confidence, threshold, context.query)
        return self._timed(answer, applied, timed), ranked.candidates + ranked.rest

    def context(self, question: str, history: Sequence[Turn]) -> ConversationContext:
        """What the earlier turns tell about a question (qa.conversation); nothing when there are none."""
        if not history:
            return ConversationContext.alone(question)
        settings = self.settings
        return build_context(
            self.backend,
            self.embedder,
            question,
            history,
            self.conversation_weights,
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
        )

    @events.query("search")
    def search(self, query: str, top_k: int = 5, filters: Filters | None = None) -> list[SearchHit]:
        """The passages most relevant to a query, best first, each with its best sentence highlighted.

        `filters` limit the articles (dates, sources); the query's words are searched as they are.
        """
        query, top_k = self._check_query(query, top_k)
        ranked = self._rank(query, top_k, filters=filters)
        return hits_for(ranked.candidates[:top_k], ranked.sentences[:top_k])

    @property
    def scorer(self) -> AnswerScorer:
        """The answer scorer (QA_SCORER_WEIGHTS, default: the weights shipped with qa)."""
        return load_scorer(self.settings.scorer_weights)

    @property
    def min_confidence(self) -> float:
        """The confidence below which answers are withheld: QA_MIN_CONFIDENCE, else the scorer's own threshold."""
        chosen = self.settings.min_confidence
        return self.scorer.threshold if chosen is None else chosen

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
        context: ConversationContext | None = None,
        filters: Filters | None = None,
        latest: bool = False,
    ) -> Ranked:
        """Hybrid retrieval, then the head's sentences scored (with the conversation's bonus for a follow-up's
        thread) and its passages re-ranked by their best one. For a latest question, the newest of the passages
        that answer nearly as well as the best leads (qa.answering.recency)."""
        recent = latest and self.recency.enabled
        table, rest = self.head(query, top_k, depth, context, filters, self.recency.depth if recent else 0)
        head = self._scored(table, context)
        if not recent:
            return Ranked(head, head.candidates, head.sentences, rest)
        question_vector = self.embedder.encode_cached([query])[0]

        def newer_than(day: date) -> list[Candidate]:
            since = intersect(filters, Filters(since=day))
            return self._retrieve(query, context, self.recency.depth, since, boost=False)

        def rescore(candidates: list[Candidate]) -> tuple[list[Candidate], list[list[ScoredSentence]]]:
            nonlocal head
            head = self._scored(sentence_table(query, question_vector, candidates, self.embedder), context)
            return head.candidates, head.hand_scored

        # Which passage leads is decided on the hand-weighted support, which scores alike stories alike; the
        # learned probabilities of the final head are then re-ordered to match.
        look_newer(head.candidates, head.hand_scored, newer_than, rescore, self.recency, RELEVANT)
        leader = newest_near_best(head.candidates, head.hand_scored, self.recency.window, RELEVANT)
        candidates, sentences = promote(head.candidates, head.sentences, leader)
        held = {c.passage.id for c in candidates}
        return Ranked(head, candidates, sentences, [c for c in rest if c.passage.id not in held])

    def _scored(self, table: SentenceTable, context: ConversationContext | None) -> ScoredHead:
        return score_head(table, self.scorer, rerank=self.settings.rerank_depth > 0, context=context)

    def _retrieve(
        self, query: str, context: ConversationContext | None, k: int, filters: Filters | None, boost: bool
    ) -> list[Candidate]:
        """Hybrid retrieval of the query, or with a conversation context of its search text and vector (and, with
        `boost`, its articles' passages favoured)."""
        settings = self.settings
        question_vector = self.embedder.encode_cached([query])[0]
        return retrieve(
            self.backend,
            context.query if context is not None else query,
            context.search_vector(question_vector) if context is not None else question_vector,
            k,
            fusion=settings.fusion,
            dense_weight=settings.dense_weight,
            boost=context.boost if boost and context is not None else None,
            filters=filters,
        )

    def head(
        self,
        query: str,
        top_k: int = 5,
        depth: int = 0,
        context: ConversationContext | None = None,
        filters: Filters | None = None,
        at_least: int = 0,
    ) -> tuple[SentenceTable, list[Candidate]]:
        """The head of the hybrid ranking as candidate sentences with their features for the query, and the
        ranking below it. The head is max(top_k, QA_RERANK_DEPTH, at_least) passages; the ranking goes on at least
        `depth`. With a conversation context, its search text is searched, its articles' passages favoured (the
        question's own words still make the sentences' features); filters apply inside retrieval.
        """
        head_size = max(top_k, self.settings.rerank_depth, at_least)
        ranking = self._retrieve(query, context, max(head_size, depth), filters, boost=True)
        head, rest = ranking[:head_size], ranking[head_size:]
        question_vector = self.embedder.encode_cached([query])[0]
        return sentence_table(query, question_vector, head, self.embedder), rest

    def _check_history(self, history: Sequence[Turn]) -> list[Turn]:
        """The turns, within QA_MAX_HISTORY_TURNS and QA_MAX_HISTORY_CHARS; an error names the field at fault."""
        settings = self.settings
        if len(history) > settings.max_history_turns:
            raise InvalidQuestion(
                f"history: {len(history)} turns; the limit is {settings.max_history_turns} (QA_MAX_HISTORY_TURNS)"
            )
        total = 0
        for i, turn in enumerate(history):
            for name in ("question", "answer"):
                text: str = getattr(turn, name)
                if not is_unicode(text):
                    raise InvalidQuestion(f"history.{i}.{name}: not valid Unicode text (it holds a lone surrogate)")
                total += len(text)
            if not turn.question.split():
                raise InvalidQuestion(f"history.{i}.question: the question is empty")
            for j, article_id in enumerate(turn.article_ids):
                if not is_unicode(article_id):
                    raise InvalidQuestion(f"history.{i}.article_ids.{j}: not valid Unicode text")
                total += len(article_id)
        if total > settings.max_history_chars:
            raise InvalidQuestion(
                f"history: {total} characters in its turns (questions, answers, article ids); the limit is"
                f" {settings.max_history_chars} (QA_MAX_HISTORY_CHARS)"
            )
        return [
            Turn(question=" ".join(t.question.split()), answer=t.answer, article_ids=t.article_ids) for t in history
        ]

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
