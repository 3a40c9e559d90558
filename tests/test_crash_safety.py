"""Crash safety: kill -9 during ingest, a full disk during a checkpoint; the index stays whole."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import faiss_backend
from qa import QA, Article, Settings
from qa.backends.faiss_sqlite.vectors import VectorIndex
from qa.embedding import SentenceTransformerEmbedder

TOPICS = ["harbour", "railway", "orchard", "festival", "library", "bridge", "market", "glacier"]


def write_corpus(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = random.Random(7)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        sentences = [
            f"The {topic} in town number {i} reported {rng.randint(10, 999)} visitors in week {j}." for j in range(40)
        ]
        (folder / f"{i:03}.txt").write_text(f"Story {i} about the {topic}\n\n" + " ".join(sentences))


def assert_whole(settings: Settings, embedder: SentenceTransformerEmbedder) -> QA:
    qa = QA(settings, embedder)
    assert faiss_backend(qa).consistent()  # SQLite integrity_check ok, FAISS ids == passage rows
    db = faiss_backend(qa).store.connection()
    # Every article is fully present: it has passages, and every passage has its vector.
    assert (
        db.execute(
            "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.article_id = a.id)"
        ).fetchone()[0]
        == 0
    )
    assert (
        db.execute(
            "SELECT COUNT(*) FROM passages p WHERE NOT EXISTS"
            " (SELECT 1 FROM embeddings e WHERE e.text_hash = p.text_hash AND e.model = ?)",
            (embedder.name,),
        ).fetchone()[0]
        == 0
    )
    return qa


def test_kill_9_during_ingest_leaves_a_whole_index(
    tmp_path: Path, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 96)
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir)}
    rng = random.Random(1)
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "ingest", "--quiet", str(corpus)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process.wait(timeout=rng.uniform(3.0, 9.0))  # the crash moment is random, not a synchronisation
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        assert_whole(settings, embedder)
    assert kills >= 1, "no ingest was interrupted: make the corpus bigger"
    done = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", "--quiet", str(corpus)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    qa = assert_whole(settings, embedder)
    articles, passages = qa.counts()
    assert articles == 96
    fresh = QA(settings.model_copy(update={"index_dir": tmp_path / "clean"}), embedder)
    fresh.ingest([corpus])
    assert passages == fresh.counts()[1]  # no duplicates
    assert "visitors" in qa.ask("How many visitors did the glacier in town number 7 report?").answer


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_generation(
    qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    qa.add(Article(id="a", text="The harbour master retired after forty years."))
    faiss_backend(qa).checkpoint()
    before = sorted(p.name for p in settings.index_dir.glob("vectors-*.faiss"))

    def disk_full(self: VectorIndex, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VectorIndex, "save", disk_full)
    qa.add(Article(id="b", text="The orchard sold ten tonnes of apples."))
    with pytest.raises(OSError, match="No space left"):
        faiss_backend(qa).checkpoint()
    monkeypatch.undo()
    assert sorted(p.name for p in settings.index_dir.glob("vectors-*.faiss")) == before
    assert not list(settings.index_dir.glob("*.tmp"))
    reopened = assert_whole(settings, embedder)
    assert reopened.counts() == (2, 2)
    assert "apples" in reopened.ask("How many apples did the orchard sell?").answer


def test_a_partial_checkpoint_file_is_never_loaded(
    qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    qa.add(Article(id="a", text="The glacier retreated forty metres last summer."))
    import faiss

    real_write = faiss.write_index

    def write_half(index: faiss.Index, path: str) -> None:
        real_write(index, path)
        Path(path).write_bytes(Path(path).read_bytes()[:50])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", write_half)
    with pytest.raises(OSError):
        faiss_backend(qa).checkpoint()
    monkeypatch.undo()
    assert not list(settings.index_dir.glob("*.tmp"))
    assert_whole(settings, embedder)
