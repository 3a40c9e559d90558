"""Watch mode: files written to, changed in and removed from a folder show up in answers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import QA
from qa.indexing.watching import watch_folder
from qa.records import IngestReport

TIMEOUT = 30.0  # generous for a loaded CI machine; the README figure comes from bench/


@pytest.fixture
def watched(qa: QA, tmp_path: Path) -> Iterator[tuple[Path, queue.Queue[IngestReport]]]:
    folder = tmp_path / "corpus"
    folder.mkdir()
    batches: queue.Queue[IngestReport] = queue.Queue()
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=watch_folder, args=(qa.indexer, folder, stop, batches.put, ready), daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT), "the watcher did not start"
    yield folder, batches
    stop.set()
    thread.join(timeout=TIMEOUT)


def next_change(batches: queue.Queue[IngestReport]) -> IngestReport:
    """The next batch that did something (editors may touch a file twice)."""
    while True:
        report = batches.get(timeout=TIMEOUT)
        if report.added or report.updated or report.deleted or report.skipped:
            return report


def test_new_changed_and_deleted_files_are_reflected(qa: QA, watched: tuple[Path, queue.Queue[IngestReport]]) -> None:
    folder, batches = watched
    (folder / "sub").mkdir()
    story = folder / "sub" / "ferry.txt"
    story.write_text("Ferry news\n\nThe river ferry to Dunmore carries 300 passengers a day.")
    assert next_change(batches).added == ["sub/ferry.txt"]
    assert "300 passengers" in qa.ask("How many passengers does the Dunmore ferry carry?").answer

    story.write_text("Ferry news\n\nThe river ferry to Dunmore now carries 450 passengers a day.")
    assert next_change(batches).updated == ["sub/ferry.txt"]
    assert "450 passengers" in qa.ask("How many passengers does the Dunmore ferry carry?").answer

    story.unlink()
    assert next_change(batches).deleted == ["sub/ferry.txt"]
    assert qa.counts() == (0, 0)


def test_a_broken_file_is_reported_and_watching_goes_on(watched: tuple[Path, queue.Queue[IngestReport]]) -> None:
    folder, batches = watched
    (folder / "bad.json").write_text("{")
    assert "invalid JSON" in next_change(batches).skipped[0]
    (folder / "good.md").write_text("# Good\n\nThe museum reopened on Sunday.")
    assert next_change(batches).added == ["good.md"]
