"""Keep the index in step with a corpus folder: new, changed and deleted files are reflected in answers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, watch

from qa.articles.corpus import read_files
from qa.indexing.pipeline import Indexer, report_of
from qa.records import IngestReport

log = logging.getLogger(__name__)

DEBOUNCE_MS = 200  # files written in one go are handled in one batch


def sync_files(indexer: Indexer, folder: Path, changed: set[Path], deleted: set[Path]) -> IngestReport:
    """Apply one batch of file changes: re-read changed files, drop the articles of deleted ones."""
    folder = folder.resolve()
    readable = files_to_read(folder, changed)
    # Symlinks are not resolved here: read_files refuses those that lead out of the corpus roots.
    read = read_files(((p, folder) for p in readable), [*indexer.allowed_roots, folder], exclude=indexer.index_dir)
    statuses = indexer.upsert(read.articles, files=read.files) if read.articles else {}
    report = report_of(statuses, read.skipped)
    # An article is gone when its file is, or when its (re-read) file no longer holds it.
    gone = {str(p.resolve()) for p in deleted}
    reread = {str(p.resolve()) for p in readable}

    def stale(article_id: str, file: str) -> bool:
        removed = file in gone or any(file.startswith(g + "/") for g in gone)
        return removed or (file in reread and article_id not in statuses)

    report.deleted += indexer.remove_stale(stale)
    return report


def files_to_read(folder: Path, changed: set[Path]) -> list[Path]:
    """The files a batch of changes asks to read: changed files, and every file of a new folder."""
    inside = {_inside(p, folder) for p in changed}
    # A new folder's files may have been written before the watcher saw the folder: read them all.
    expanded = inside | {f for p in inside if p.is_dir() and not p.is_symlink() for f in p.rglob("*")}
    return sorted(
        p
        for p in expanded
        if p.is_relative_to(folder)
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _inside(path: Path, folder: Path) -> Path:
    """`path` spelled from the resolved `folder` when it is under it (parents resolved, the file itself not)."""
    parent = path.parent.resolve()
    return parent / path.name if path.name else parent


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
    for batch in batches:
        if ready is not None:
            ready.set()
        if not batch:
            continue
        changed = {Path(p) for kind, p in batch if kind != Change.deleted}
        deleted = {Path(p) for kind, p in batch if kind == Change.deleted}
        try:
            report = sync_files(indexer, folder, changed, deleted)
        except Exception:  # a watcher must outlive one bad batch
            log.exception("could not apply changes in %s", folder)
            continue
        log.info(
            "watch: %d added, %d updated, %d removed, %d skipped",
            len(report.added),
            len(report.updated),
            len(report.deleted),
            len(report.skipped),
        )
        if on_batch is not None:
            on_batch(report)
