"""Ingestion from folders stays inside the corpus roots: symlinks and `..` that lead out are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa import QA
from qa.articles.corpus import read_files
from qa.embedding import SentenceTransformerEmbedder
from qa.indexing.watching import sync_files
from qa.settings import Settings

STORY = "Harbour news\n\nThe harbour master of Portsoy retired after forty years at the quay."
SECRET = "Private notes\n\nThe secret password of the operator is swordfish."


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """corpus/ with one story, a symlinked file and a symlinked folder leading to outside/ with a secret."""
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (corpus / "story.txt").write_text(STORY)
    (outside / "secret.txt").write_text(SECRET)
    (corpus / "link.txt").symlink_to(outside / "secret.txt")
    (corpus / "folder").symlink_to(outside, target_is_directory=True)
    return corpus, outside


def _qa(tmp_path: Path, embedder: SentenceTransformerEmbedder, corpus: Path, **overrides: Any) -> QA:
    return QA(Settings(index_dir=tmp_path / "index", corpus_dir=corpus, **overrides), embedder)


def test_symlinks_out_of_the_corpus_are_skipped(
    layout: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    corpus, _ = layout
    qa = _qa(tmp_path, embedder, corpus)
    report = qa.ingest()
    assert report.added == ["story.txt"]
    assert any("link.txt" in s and "outside the corpus roots" in s for s in report.skipped), report.skipped
    assert "outside the corpus roots" in caplog.text
    assert qa.ask("What is the secret password?").abstained


def test_dot_dot_paths_from_a_folder_walk_are_skipped(
    layout: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    corpus, _outside = layout
    qa = _qa(tmp_path, embedder, corpus)
    read = read_files([(corpus / ".." / "outside" / "secret.txt", corpus)], qa.settings.allowed_roots())
    assert read.articles == [] and "outside the corpus roots" in read.skipped[0]


def test_the_watcher_skips_symlinks_that_lead_out(
    layout: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    corpus, _outside = layout
    qa = _qa(tmp_path, embedder, corpus)
    changed = {corpus / "story.txt", corpus / "link.txt", corpus / "folder", corpus / "folder" / "secret.txt"}
    report = sync_files(qa.indexer, corpus, changed, set())
    assert report.added == ["story.txt"]
    assert any("link.txt" in s for s in report.skipped)
    assert qa.counts()[0] == 1


def test_configured_roots_allow_an_outside_folder(
    layout: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    corpus, outside = layout
    qa = _qa(tmp_path, embedder, corpus, corpus_roots=[corpus, outside])
    report = qa.ingest()
    assert sorted(report.added) == ["link.txt", "story.txt"] and report.skipped == []


def test_paths_the_operator_names_are_trusted(
    layout: tuple[Path, Path], tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """`qa ingest PATH` reads PATH even outside the corpus, but a walk of it still does not follow links out."""
    corpus, outside = layout
    qa = _qa(tmp_path, embedder, corpus)
    assert qa.ingest([outside / "secret.txt"]).added == ["secret.txt"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "escape.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    report = qa.ingest([other])
    assert report.added == [] and len(report.skipped) == 1


def test_corpus_roots_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_CORPUS_ROOTS", f"{tmp_path / 'a'},{tmp_path / 'b'}")
    assert Settings().allowed_roots() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    monkeypatch.delenv("QA_CORPUS_ROOTS")
    monkeypatch.setenv("QA_CORPUS_DIR", str(tmp_path / "c"))
    assert Settings().allowed_roots() == [(tmp_path / "c").resolve()]
