"""The `qa` command: a thin adapter from the command line to the library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from qa.conversation_eval import MODES as CONVERSATION_MODES
from qa.errors import QAError
from qa.records import Answer, Feed, Filters, IngestReport, PollReport, SearchHit, Turn
from qa.retrieval.filters import describe, read_filters
from qa.service import QA
from qa.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_SKIPPED = 3


class Context:
    """What the group's options leave for the commands: settings and a lazily built QA."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._qa: QA | None = None

    @property
    def qa(self) -> QA:
        if self._qa is None:
            self._qa = QA(self.settings)
        return self._qa


pass_context = click.make_pass_decorator(Context)


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except QAError as e:
        raise click.ClickException(str(e)) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index folder (QA_INDEX_DIR, default index/).")
@click.option("--model", help="sentence-transformers model name or path (QA_MODEL).")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
@click.version_option(package_name="qa")
@click.pass_context
def cli(ctx: click.Context, index_dir: Path | None, model: str | None, verbose: bool) -> None:
    """Ask questions about news articles; every answer cites the passage it came from.

    \b
    Example:
      qa ingest corpus/
      qa ask "What does Nurly Zhol mean?"
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    if index_dir is not None:
        overrides["index_dir"] = index_dir
    if model:
        overrides["model"] = model
    try:
        settings = Settings(**overrides)
    except ValueError as e:
        raise click.ClickException(f"invalid setting: {e}") from e
    ctx.obj = Context(settings)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--prune", is_flag=True, help="Also remove indexed articles whose files are gone.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--shard", callback=lambda _c, _p, v: _shard(v), help="Only shard I of N (by article id hash), as I/N.")
@pass_context
def ingest(obj: Context, paths: tuple[str, ...], prune: bool, quiet: bool, shard: tuple[int, int] | None) -> None:
    """Add new and changed articles from files, folders or web pages (default: the corpus folder).

    Reads .txt, .md, .html, .json and .jsonl, recursively. An http(s) URL is fetched and read as an
    HTML page (public addresses only unless QA_FETCH_ALLOW lists them; robots.txt honoured); its id is
    the slug of its canonical URL, so fetching it again updates it. Unchanged articles are skipped;
    files and pages that cannot be read are reported, and the exit status is 3. With --shard I/N, N
    workers (on any machines sharing one PostgreSQL database) split the corpus between them.

    \b
    Example:
      qa ingest corpus/ ~/Downloads/articles.jsonl
      qa ingest https://example.org/news/2024/otters.html
      QA_BACKEND=postgres qa ingest --shard 0/2 corpus/   # and --shard 1/2 on another machine
    """
    from tqdm import tqdm

    urls = [p for p in paths if "://" in p]
    files = [Path(p) for p in paths if "://" not in p]
    with _domain_errors():
        report = IngestReport()
        if files or not urls:
            with tqdm(unit="article", disable=quiet, file=sys.stderr) as bar:
                report = obj.qa.ingest(files or None, bar, prune=prune, shard=shard)
        if urls:
            with tqdm(desc="fetching", unit="page", disable=quiet, file=sys.stderr) as bar:
                fetched = obj.qa.ingest_urls(urls, bar)
            for name in ("added", "updated", "unchanged", "skipped"):
                getattr(report, name).extend(getattr(fetched, name))
    for message in report.skipped:
        click.echo(f"skipped: {message}", err=True)
    click.echo(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.deleted)} removed, {len(report.skipped)} skipped"
    )
    if report.skipped:
        sys.exit(EXIT_SKIPPED)


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not I/N (e.g. 0/4)") from None
    if not 0 <= i < n:
        raise click.BadParameter(f"{value!r}: I must be between 0 and N-1")
    return i, n


def filter_options(command: F) -> F:
    """--since, --until and --source (repeatable), as the API's since/until/source."""
    command = click.option(
        "--source",
        "sources",
        multiple=True,
        help="Only articles from this source: a site (example.org), a folder (corpus/business) or a feed URL, as"
        " GET /api/sources names them; repeat for several.",
    )(command)
    command = click.option("--until", help="Only articles published on or before this date (YYYY-MM-DD).")(command)
    return click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD).")(command)


@contextmanager
def _filters(since: str | None, until: str | None, sources: tuple[str, ...]) -> Iterator[Filters | None]:
    with _domain_errors():
        yield read_filters(since, until, sources)


@cli.command()
@click.argument("question")
@click.option("--top-k", default=5, show_default=True, help="Passages to consider.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON object as POST /api/ask.")
@click.option(
    "--history",
    "history_file",
    type=click.File("r", encoding="utf-8"),
    help='The conversation so far: a JSON list of {"question", "answer", "article_ids"} turns, oldest first (- reads'
    " standard input). A follow-up is then searched in their context; the searched text is shown.",
)
@pass_context
def ask(
    obj: Context,
    question: str,
    top_k: int,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    as_json: bool,
    history_file: TextIO | None,
) -> None:
    """Answer a question from the indexed articles, with citations.

    A time the question names ("in June 1987", "last month", counted from the newest article) limits the
    articles it is answered from; a question about the latest state ("latest", "now") prefers newer articles
    and says the date.

    \b
    Example:
      qa ask "How large are Kazakhstan's oil reserves?"
      echo '[{"question": "How large are Kazakhstan's oil reserves?", "answer": "30 billion barrels"}]' > turns.json
      qa ask "And what about its gas?" --history turns.json
      qa ask "What is the latest on oil prices?" --source Reuters --since 1987-06-01
    """
    history = _read_history(history_file) if history_file is not None else None
    with _filters(since, until, sources) as filters, _domain_errors():
        answer = obj.qa.ask(question, top_k, history=history, filters=filters)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    if answer.query != answer.question:
        click.echo(click.style(f"searched: {answer.query}", dim=True))
    click.echo(_format_answer(answer))


def _read_history(file: TextIO) -> list[Turn]:
    """The turns in a --history file, or a one-line error naming the field at fault."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(list[Turn]).validate_json(file.read())
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(p) for p in ("history", *error["loc"]))
        raise click.ClickException(f"{file.name}: {where}: {error['msg']}") from e


@cli.command()
@click.option("--top-k", default=5, show_default=True, help="Passages to consider.")
@pass_context
def chat(obj: Context, top_k: int) -> None:
    """Ask questions in a conversation: follow-ups ("In what city?") read the turns before them.

    Line editing and the question history are readline's (arrow keys). /new starts a new conversation,
    Ctrl-D (or /quit) leaves. Answers and citations are printed as `qa ask` prints them.

    \b
    Example:
      qa chat
      > How large are Kazakhstan's oil reserves?
      > And what about its gas?
    """
    from qa.conversation import trimmed, turn_of

    with contextlib.suppress(ImportError):  # no readline on Windows; input() then reads plain lines
        import readline  # noqa: F401  (input() edits lines and remembers them)
    settings = obj.settings
    history: list[Turn] = []
    click.echo("Ask a question; /new starts over, Ctrl-D leaves.", err=True)
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            click.echo(err=True)
            return
        if line in ("/quit", "/exit"):
            return
        if line == "/new":
            history = []
            click.echo("(new conversation)", err=True)
            continue
        if not line:
            continue
        try:
            answer = obj.qa.ask(line, top_k, history=history)
        except QAError as e:
            click.echo(f"Error: {e}", err=True)
            continue
        if answer.query != answer.question:
            click.echo(click.style(f"searched: {answer.query}", dim=True))
        click.echo(_format_answer(answer) + "\n")
        history = trimmed([*history, turn_of(answer)], settings.max_history_turns, settings.max_history_chars)


@cli.command()
@click.argument("query")
@click.option("--top-k", default=5, show_default=True, help="Passages to return.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON object as GET /api/search.")
@pass_context
def search(
    obj: Context,
    query: str,
    top_k: int,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the passages most relevant to a query (of the articles the filters allow).

    \b
    Example:
      qa search "Shanghai Cooperation Organization" --top-k 3
      qa search "oil prices" --since 1987-10-01 --until 1987-10-31 --source Reuters
    """
    with _filters(since, until, sources) as filters, _domain_errors():
        hits = obj.qa.search(query, top_k, filters=filters)
    if as_json:
        click.echo(json.dumps({"results": [h.model_dump() for h in hits]}, indent=2, ensure_ascii=False))
        return
    for i, hit in enumerate(hits, start=1):
        click.echo(_format_hit(i, hit))


@cli.command(name="list")
@click.option("--limit", default=100, show_default=True, help="Articles to show.")
@click.option("--offset", default=0, help="Articles to skip.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON object as GET /api/articles.")
@pass_context
def list_(
    obj: Context,
    limit: int,
    offset: int,
    since: str | None,
    until: str | None,
    sources: tuple[str, ...],
    as_json: bool,
) -> None:
    """List indexed articles (those the filters allow), newest first.

    \b
    Example:
      qa list --limit 20
      qa list --source example.org --since 2024-01-01
    """
    with _filters(since, until, sources) as filters, _domain_errors():
        total, page = obj.qa.articles(offset, limit, filters)
    if as_json:
        payload = {
            "total": total,
            "offset": offset,
            "limit": limit,
            "articles": [a.model_dump() for a in page],
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for article in page:
        click.echo(f"{article.id}\t{article.published or '-'}\t{article.passages} passages\t{article.title}")
    click.echo(f"{total} articles", err=True)


@cli.command()
@click.argument("article_id")
@pass_context
def delete(obj: Context, article_id: str) -> None:
    """Remove an article from the index (its file, if any, stays).

    \b
    Example:
      qa delete kazakhstan-china-new-silk-road.txt
    """
    with _domain_errors():
        obj.qa.delete(article_id)
    click.echo(f"deleted {article_id}")


@cli.command()
@pass_context
def rebuild(obj: Context) -> None:
    """Rebuild the vector index from the stored passages; re-embeds only if the model or chunking changed.

    \b
    Example:
      QA_MODEL=/models/other-model qa rebuild
    """
    from tqdm import tqdm

    with _domain_errors(), tqdm(desc="embedding", unit="passage", file=sys.stderr) as bar:
        vectors = obj.qa.rebuild(bar)
    click.echo(f"rebuilt: {vectors} passages indexed")


@cli.group()
def feeds() -> None:
    """Follow RSS and Atom feeds: their new and changed stories are fetched and indexed at each poll.

    \b
    Example:
      qa feeds add https://example.org/news/rss.xml
      qa feeds poll              # once; `qa serve --feeds` polls every QA_FEED_INTERVAL seconds
      qa feeds list
    """


@feeds.command(name="add")
@click.argument("url")
@pass_context
def feeds_add(obj: Context, url: str) -> None:
    """Follow a feed (it is fetched once to check that it is RSS or Atom); `qa feeds poll` reads its items.

    \b
    Example:
      qa feeds add https://example.org/news/rss.xml
    """
    with _domain_errors():
        feed, items = obj.qa.follow_feed(url)
    click.echo(f"following {feed.url} ({feed.title or 'untitled'}, {items} items now); `qa feeds poll` reads them")


@feeds.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as JSON.")
@pass_context
def feeds_list(obj: Context, as_json: bool) -> None:
    """List the followed feeds with their last poll.

    \b
    Example:
      qa feeds list
    """
    with _domain_errors():
        followed = obj.qa.feeds()
    if as_json:
        click.echo(json.dumps([f.model_dump() for f in followed], indent=2, ensure_ascii=False))
        return
    for feed in followed:
        click.echo(f"{feed.url}\t{feed.title or '-'}\tpolled {feed.polled or 'never'}\t{feed.last_result or ''}")
    click.echo(f"{len(followed)} feeds", err=True)


@feeds.command(name="remove")
@click.argument("url")
@pass_context
def feeds_remove(obj: Context, url: str) -> None:
    """Stop following a feed; the articles it brought stay (remove them with `qa delete`).

    \b
    Example:
      qa feeds remove https://example.org/news/rss.xml
    """
    with _domain_errors():
        obj.qa.unfollow_feed(url)
    click.echo(f"no longer following {url}")


@feeds.command(name="poll")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@pass_context
def feeds_poll(obj: Context, quiet: bool) -> None:
    """Poll every followed feed once: one line per feed (new, updated, unchanged, failed items).

    Exit status 3 when a feed or an item could not be read.

    \b
    Example:
      qa feeds poll
    """
    from tqdm import tqdm

    bars: list[Any] = []

    def bar(feed: Feed) -> Any:
        bars.append(tqdm(desc=feed.title or feed.url, unit="item", disable=quiet, file=sys.stderr, leave=False))
        return bars[-1]

    try:
        with _domain_errors():
            reports = obj.qa.poll_feeds(bar)
    finally:
        for b in bars:
            b.close()
    for report in reports:
        for message in report.failed:
            click.echo(f"failed: {message}", err=True)
        click.echo(report.summary())
    if not reports:
        click.echo("no feeds are followed: `qa feeds add URL`", err=True)
    if any(r.error or r.failed for r in reports):
        sys.exit(EXIT_SKIPPED)


@cli.command()
@click.option("--host", help="Address to listen on (QA_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (QA_PORT, default 8000).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--ingest", "ingest_first", is_flag=True, help="First bring the index up to date with the corpus folder.")
@click.option("--watch", "watch_corpus", is_flag=True, help="Keep the index in step with the corpus folder.")
@click.option("--feeds", "poll_feeds", is_flag=True, help="Poll the followed feeds every QA_FEED_INTERVAL seconds.")
@pass_context
def serve(
    obj: Context,
    host: str | None,
    port: int | None,
    workers: int,
    ingest_first: bool,
    watch_corpus: bool,
    poll_feeds: bool,
) -> None:
    """Serve the chat page at / and the API at /api (docs at /docs).

    \b
    Example:
      QA_API_KEY=secret qa serve --host 0.0.0.0 --port 8000
      qa serve --ingest        # what `make run` does
      qa serve --watch         # files added to corpus/ are answerable within seconds
      qa serve --feeds         # followed feeds polled every QA_FEED_INTERVAL seconds
    """
    import uvicorn

    settings = obj.settings
    if ingest_first:
        with _domain_errors():
            report = obj.qa.ingest()
        for message in report.skipped:
            click.echo(f"skipped: {message}", err=True)
        click.echo(
            f"index: {len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged",
            err=True,
        )
    # Workers build their app from the environment, so hand the settings over through it.
    os.environ["QA_INDEX_DIR"] = str(settings.index_dir)
    os.environ["QA_MODEL"] = settings.model
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker keeps its own metrics; in prometheus_client's multiprocess mode they write them to files
        # here and any worker's /metrics adds them up. A fresh folder per run: old files would be counted too.
        import tempfile

        metrics_dir = tempfile.TemporaryDirectory(prefix="qa-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    with _domain_errors():
        obj.qa.counts()  # fail here, with a clear message, if the index cannot be opened
    if watch_corpus:
        import threading

        from qa.indexing.watching import watch_folder

        stop = threading.Event()
        threading.Thread(
            target=watch_folder, args=(obj.qa.indexer, settings.corpus_dir, stop), name="qa-watch", daemon=True
        ).start()
        click.echo(f"watching {settings.corpus_dir}", err=True)
    if poll_feeds:
        import threading

        from qa.sources.feeds import poll_forever

        def show(report: PollReport) -> None:
            click.echo(f"feeds: {report.summary()}", err=True)

        threading.Thread(
            target=poll_forever,
            args=(obj.qa.feed_poller, settings.feed_interval, threading.Event(), show),
            name="qa-feeds",
            daemon=True,
        ).start()
        click.echo(f"polling feeds every {settings.feed_interval:g} s", err=True)
    from qa.server.serving import raise_open_file_limit, uvicorn_options

    raise_open_file_limit()
    click.echo(f"serving on http://{host or settings.host}:{port or settings.port}", err=True)
    try:
        uvicorn.run(
            "qa.server.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            **uvicorn_options(settings),
        )
    finally:
        if metrics_dir is not None:
            metrics_dir.cleanup()


@cli.command(name="mcp")
@pass_context
def mcp_(obj: Context) -> None:
    """Serve the articles to an AI assistant over MCP on stdin/stdout, until the assistant closes it.

    Tools: ask, search, get_article, list_articles; articles are resources (qa://articles/{id}).
    `qa serve` offers the same over HTTP at /mcp.

    \b
    Example:
      QA_INDEX_DIR=/srv/qa/index qa mcp
      # in an assistant's config: {"command": "qa", "args": ["mcp"], "env": {"QA_INDEX_DIR": "/srv/qa/index"}}
    """
    from qa.mcp.server import run_stdio

    with _domain_errors():
        obj.qa.counts()  # fail here, with one line on stderr, if the index cannot be opened
    run_stdio(obj.qa)


@cli.command()
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_context
def watch(obj: Context, folder: Path | None) -> None:
    """Keep the index in step with a folder: new, changed and deleted files, until Ctrl-C.

    \b
    Example:
      qa watch corpus/
    """
    import threading

    from qa.indexing.watching import watch_folder

    folder = folder or obj.settings.corpus_dir
    with _domain_errors():
        report = obj.qa.ingest([folder], prune=True)
    click.echo(
        f"watching {folder} ({len(report.added) + len(report.updated)} changed on start); Ctrl-C stops", err=True
    )

    def show(batch: IngestReport) -> None:
        for message in batch.skipped:
            click.echo(f"skipped: {message}", err=True)
        click.echo(f"{len(batch.added)} added, {len(batch.updated)} updated, {len(batch.deleted)} removed", err=True)

    with _domain_errors():
        watch_folder(obj.qa.indexer, folder, threading.Event(), show)


@cli.command(name="eval")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Evaluate this existing index instead of a temporary one built from DATASET/articles.jsonl.",
)
@click.option(
    "--distractors",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="More articles (files or folders) to index beside the dataset's, to test robustness.",
)
@click.option(
    "--offtopic",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A dataset whose questions are about articles NOT indexed: measures abstention.",
)
@click.option("--limit", type=int, help="Only the first N questions (conversations, for a conversation set).")
@click.option(
    "--modes",
    default=",".join(CONVERSATION_MODES),
    show_default=True,
    help="Conversation sets: how to ask later turns (history: the engine; alone: each question on its own;"
    " paste: the last two turns pasted in front of the question).",
)
@click.option(
    "--part",
    callback=lambda _c, _p, v: _shard(v),
    help="Conversation sets: ask only the conversations at positions I mod N, as I/N (0/2 and 1/2 split by story;"
    " every story is still indexed).",
)
@click.option(
    "--article-ids",
    is_flag=True,
    help="Conversation sets: the gold history also names each turn's article (as the chat page sends the articles"
    " its answers cited); by default it is question and answer text only.",
)
@pass_context
def eval_(
    obj: Context,
    dataset: Path,
    as_json: bool,
    index_dir: Path | None,
    distractors: tuple[Path, ...],
    offtopic: Path | None,
    limit: int | None,
    modes: str,
    part: tuple[int, int] | None,
    article_ids: bool,
) -> None:
    """Measure retrieval (hit@k, MRR), answers, abstention and confidence calibration on a question set, or
    follow-ups on a conversation set.

    DATASET is a folder with articles.jsonl and questions.jsonl (the format of SQuAD-style sets), or with
    articles.jsonl and conversations.jsonl (id, article_id, turns [{turn, question, answer, span_start, span_end,
    answerable}], the format of CoQA). Questions marked "answerable": false (SQuAD 2.0 style) measure
    abstention: answered-when-answerable, abstained-when-not and their balanced accuracy. Calibration: the
    reliability table and the expected calibration error (ECE) of the answers' confidence against whether their
    first sentence is right. Each turn of a conversation is asked with the gold questions and answers of the
    turns before it as its history, and judged for first turns and later turns on: article@1 (the article of
    the answer's first citation is the conversation's; an abstention counts as a miss), support@1 (that
    citation's highlighted sentence overlaps the gold rationale) and answer in highlight (the gold answer, when
    not yes/no, appears in the answer's sentences), beside the same for each turn asked alone and for a client
    that pastes the last two turns in front of the question.

    \b
    Example:
      qa eval ../shared/data/squad-tune --offtopic other-set/ --distractors ../shared/data/bbc-news
      qa eval ../shared/data/coqa-wiki --part 1/2
    """
    import tempfile

    from tqdm import tqdm

    from qa import conversation_eval, evaluation

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    if unknown := [m for m in chosen if m not in CONVERSATION_MODES]:
        raise click.BadParameter(f"unknown mode {unknown[0]!r}; choose from {', '.join(CONVERSATION_MODES)}")
    conversational = conversation_eval.is_conversation_set(dataset)
    if conversational and offtopic:
        raise click.UsageError("--offtopic measures abstention on question sets, not on conversation sets")
    with _domain_errors(), tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp, ExitStack() as stack:
        if conversational:
            everyone = conversation_eval.load_conversations(dataset)
            conversations = conversation_eval.select(everyone, part)[:limit]
            questions, off = [], []
        else:
            questions = evaluation.load_questions(dataset)[:limit]
            off = evaluation.load_questions(offtopic)[:limit] if offtopic else []
        update: dict[str, Any] = {"index_dir": index_dir or Path(tmp) / "index"}
        if obj.settings.backend == "postgres" and index_dir is None and obj.settings.database_url:
            from qa.backends.postgres.connection import temporary_database
            from qa.backends.postgres.migrations import init_schema

            update["database_url"] = stack.enter_context(temporary_database(obj.settings.database_url, "qa_eval"))
            init_schema(update["database_url"])
        qa = QA(obj.settings.model_copy(update=update))
        stack.callback(qa.close)
        if index_dir is not None and qa.counts()[0] == 0:
            raise click.ClickException(f"the index in {index_dir} is empty: run `qa ingest` into it first")
        if index_dir is None:
            sources = [dataset / "articles.jsonl", *distractors]
            with tqdm(desc="indexing", unit="article", file=sys.stderr) as bar:
                report = qa.ingest(sources, bar)
            for message in report.skipped:
                click.echo(f"skipped: {message}", err=True)
        if conversational:
            with tqdm(desc="asking", unit="question", file=sys.stderr) as bar:
                talk = conversation_eval.run(qa, conversations, chosen, bar, str(dataset), article_ids, everyone)
            click.echo(conversation_eval.report_json(talk) if as_json else conversation_eval.format_table(talk))
            return
        with tqdm(desc="asking", unit="question", file=sys.stderr) as bar:
            result = evaluation.run(qa, questions, off, bar, dataset=str(dataset))
    click.echo(evaluation.report_json(result) if as_json else evaluation.format_table(result))


@cli.group()
def db() -> None:
    """The PostgreSQL database of QA_BACKEND=postgres (QA_DATABASE_URL).

    \b
    Example:
      QA_DATABASE_URL=postgresql://qa@db.internal/news qa db init
    """


@db.command(name="init")
@pass_context
def db_init(obj: Context) -> None:
    """Create or migrate the schema (and the pgvector extension); safe to run again.

    \b
    Example:
      QA_DATABASE_URL=postgresql://qa@db.internal/news qa db init
    """
    from qa.backends.postgres.migrations import init_schema

    url = obj.settings.database_url
    if not url:
        raise click.ClickException("QA_DATABASE_URL is not set (postgresql://user@host/db)")
    with _domain_errors():
        before, after = init_schema(url)
    click.echo(f"schema version {after}" + (" (unchanged)" if before == after else f" (was {before})"))


def _format_answer(answer: Answer) -> str:
    lines = [answer.answer, f"(confidence {answer.confidence:.2f})"]
    if answer.filters is not None:
        lines.append(f"(searched articles {describe(answer.filters)})")
    if answer.citations:
        lines.append("")
        lines += [_format_hit(c.n, c) for c in answer.citations]
    return "\n".join(lines)


def _format_hit(n: int, hit: SearchHit) -> str:
    where = " · ".join(x for x in (hit.published, hit.url or hit.article_id) if x)
    start, end = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
    text = hit.passage
    shown = text[:start] + click.style(text[start:end], bold=True) + text[end:]
    body = " ".join(shown.split())
    return f"[{n}] {hit.title} ({where}) score {hit.score:.2f}\n    {body}"


def main() -> None:
    """Entry point of the `qa` script."""
    cli(prog_name="qa")
