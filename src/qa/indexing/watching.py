"""Keep the index in step with a corpus folder: new, changed and deleted files are reflected in answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, watch

from qa.articles.corpus import CorpusFile, default_id, located, read_files
from qa.indexing.pipeline import Indexer, report_of
from qa.records import IngestReport

log = logging.getLogger(__name__)

DEBOUNCE_MS = 200  # files written in one go are handled in one batch
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds before a failed batch is tried again, doubling up to the most


def sync_files(indexer: Indexer, folder: Path, changed: set[Path], deleted: set[Path]) -> IngestReport:
    """Apply one batch of file changes: re-read changed files, drop the articles of deleted ones."""
    folder = folder.resolve()
    readable = files_to_read(folder, changed)
    # Symlinks are not resolved here: an article's file is where it was found (a link stays a link), and reading
    # refuses whatever the opened file turns out to lie outside the corpus roots.
    files = [CorpusFile(p, default_id(p, folder, indexer.corpus_dir)) for p in readable]
    read = read_files(files, [*indexer.allowed_roots, folder], exclude=indexer.index_dir)
    read = indexer.without_conflicts(read)
    statuses = indexer.upsert(read.articles, files=read.files) if read.articles else {}
    report = report_of(statuses, read.skipped)
    # An article is gone when its file is, or when its (re-read) file no longer holds it.
    gone = {str(located(p)) for p in deleted}
    reread = {str(p) for p in readable}

    def stale(article_id: str, file: str) -> bool:
        removed = file in gone or any(file.startswith(g + "/") for g in gone)
        return removed or (file in reread and article_id not in read.files)

    report.deleted += indexer.remove_stale(stale)
    return report


def files_to_read(folder: Path, changed: set[Path]) -> list[Path]:
    """The files a batch of changes asks to read: changed files, and every file of a new folder."""
    inside = {located(p) for p in changed}
    # A new folder's files may have been written before the watcher saw the folder: read them all.
    expanded = inside | {f for p in inside if p.is_dir() and not p.is_symlink() for f in p.rglob("*")}
    return sorted(
        p
        for p in expanded
        if p.is_relative_to(folder)
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def watch_folder(
    indexer: Indexer,
    folder: Path,
    stop: threading.Event,
    on_batch: Callable[[IngestReport], None] | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Watch `folder` until `stop` is set, applying each batch of changes to the index.

    `ready` is set once the watcher runs: changes made after that are never missed.
    """
    batches = watch(
        folder,
        stop_event=stop,
        debounce=DEBOUNCE_MS,
        step=50,
        rust_timeout=500,
        yield_on_timeout=True,  # an empty batch now and then tells us the watcher is up
        raise_interrupt=False,
    )
    changed: set[Path] = set()
    deleted: set[Path] = set()
    retry_at, backoff = 0.0, RETRY_FIRST
    for batch in batches:
        if ready is not None:
            ready.set()
        for kind, name in batch:
            path = Path(name)
            (deleted if kind == Change.deleted else changed).add(path)
            (changed if kind == Change.deleted else deleted).discard(path)
        if not (changed or deleted) or time.monotonic() < retry_at:
            continue
        try:
            report = sync_files(indexer, folder, changed, deleted)
        except Exception:  # a watcher outlives a failed batch, and retries it: no change is dropped
            log.exception("could not apply changes in %s; retrying in %.0f s", folder, backoff)
            retry_at, backoff = time.monotonic() + backoff, min(backoff * 2, RETRY_MAX)
            continue
        changed, deleted, retry_at, backoff = set(), set(), 0.0, RETRY_FIRST
        log.info(
            "watch: %d added, %d updated, %d removed, %d skipped",
            len(report.added),
            len(report.updated),
            len(report.deleted),
            len(report.skipped),
        )
        if on_batch is not None:
            on_batch(report)
