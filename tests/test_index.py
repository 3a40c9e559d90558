"""The index on disk: incremental updates, deletes, recorded settings, other processes' writes, recovery."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fixtures import REPO, SAMPLE_ID, faiss_backend
from qa import QA, Article, Settings
from qa.embedding import SentenceTransformerEmbedder
from qa.errors import IndexMismatch


def article(article_id: str, text: str, title: str = "T") -> Article:
    return Article(id=article_id, title=title, text=text)


def test_reingesting_unchanged_articles_does_nothing(sample_qa: QA) -> None:
    version = faiss_backend(sample_qa).store.last_change()
    report = sample_qa.ingest()
    assert report.unchanged == [SAMPLE_ID] and not report.added and not report.updated
    assert faiss_backend(sample_qa).store.last_change() == version


def test_a_changed_article_replaces_its_passages(qa: QA) -> None:
    qa.add(article("a", "The lighthouse keeper counted 42 ships in the bay."))
    assert qa.add(article("a", "The lighthouse was painted bright red in May.")) == "updated"
    assert qa.counts() == (1, 1)
    answer = qa.ask("What colour was the lighthouse painted?")
    assert "bright red" in answer.answer
    assert all("42 ships" not in c.passage for c in qa.search("how many ships did the keeper count", 5))


def test_a_deleted_article_is_never_cited_again(sample_qa: QA) -> None:
    sample_qa.add(article("zebra", "The zebra crossing festival in Plovdiv drew nine thousand visitors."))
    assert sample_qa.ask("How many visitors came to the Plovdiv festival?").citations[0].article_id == "zebra"
    sample_qa.delete("zebra")
    answer = sample_qa.ask("How many visitors came to the Plovdiv festival?")
    assert all(c.article_id != "zebra" for c in answer.citations)
    assert all(h.article_id != "zebra" for h in sample_qa.search("zebra crossing festival Plovdiv", 10))


def test_identical_passages_are_embedded_once(qa: QA) -> None:
    text = "Wire copy: the central bank held interest rates at four percent on Thursday."
    qa.add(article("paper-1", text))
    qa.add(article("paper-2", text))
    db = faiss_backend(qa).store.connection()
    assert db.execute("SELECT COUNT(*) FROM passages").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1


def test_the_index_records_how_it_was_built(sample_qa: QA, settings: Settings) -> None:
    manifest = json.loads((settings.index_dir / "index.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == "384"
    assert manifest["format_version"] == "1"
    assert manifest["chunk_tokens"] == str(settings.chunk_tokens)


def test_an_index_built_with_another_model_is_refused(sample_qa: QA, settings: Settings) -> None:
    with pytest.raises(IndexMismatch, match="all-MiniLM-L6-v2"):
        QA(settings.model_copy(update={"model": "some/other-model"})).counts()


def test_changed_chunking_asks_for_a_rebuild(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    other = QA(settings.model_copy(update={"chunk_tokens": 96}), embedder)
    with pytest.raises(IndexMismatch, match="qa rebuild"):
        other.add(article("x", "Some text."))
    passages = sample_qa.counts()[1]
    assert other.rebuild() > passages  # smaller passages, so more of them
    assert other.add(article("x", "Some text.")) == "added"


def test_a_reader_sees_another_writers_changes(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    reader = QA(settings, embedder)
    assert reader.ask("What does Nurly Zhol mean?").citations  # loads its FAISS index
    writer = QA(settings, embedder)
    writer.add(article("otter", "Sea otters in Monterey Bay hold hands while sleeping so they do not drift apart."))
    writer.delete(SAMPLE_ID)
    hits = reader.search("why do sea otters hold hands", 5)
    assert [h.article_id for h in hits] == ["otter"]
    assert faiss_backend(reader).consistent()


def test_a_corrupted_checkpoint_is_rebuilt_from_stored_vectors(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    [checkpoint] = list(settings.index_dir.glob("vectors-*.faiss"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    fresh = QA(settings, embedder)
    assert "lighted path" in fresh.ask("What does Nurly Zhol mean?").answer
    assert "rebuilding" in caplog.text
    assert faiss_backend(fresh).consistent()


def test_a_missing_checkpoint_is_rebuilt(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    for path in settings.index_dir.glob("vectors-*.faiss"):
        path.unlink()
    fresh = QA(settings, embedder)
    assert len(faiss_backend(fresh).vectors()) == fresh.counts()[1]


def test_a_failed_write_leaves_the_index_as_it_was(qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    qa.add(article("kept", "The old mill by the river grinds wheat every autumn."))
    before = (qa.counts(), faiss_backend(qa).store.last_change())

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(faiss_backend(qa).store, "save_article", broken)
    with pytest.raises(sqlite3.OperationalError):
        qa.add(article("lost", "A new bakery opened on the high street."))
    monkeypatch.undo()
    assert (qa.counts(), faiss_backend(qa).store.last_change()) == before
    assert faiss_backend(qa).consistent()


def test_rebuild_reuses_stored_vectors(sample_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuild must not re-embed unchanged passages")

    monkeypatch.setattr(sample_qa.embedder, "encode", no_encoding)
    monkeypatch.setattr(sample_qa.embedder, "encode_with_spans", no_encoding)
    assert sample_qa.rebuild() == sample_qa.counts()[1]


def test_nothing_is_written_to_the_repo_index(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    repo_index = REPO / "index"
    before = sorted(p.name for p in repo_index.iterdir())
    QA(embedder=embedder).add(article("x", "A default QA, as the CLI and the app build one."))
    assert (tmp_path / "index" / "qa.sqlite3").exists()  # the autouse fixture points QA_INDEX_DIR here
    assert sorted(p.name for p in repo_index.iterdir()) == before


def test_a_second_writer_waits_then_gives_up_with_a_clear_message(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    from qa.errors import IndexBusy

    impatient = QA(settings.model_copy(update={"writer_timeout": 0.2}), embedder)
    with faiss_backend(sample_qa).writer.hold():  # another writer (a separate lock file handle, as another process has)
        with pytest.raises(IndexBusy, match="another"):
            impatient.add(article("late", "A late article."))
        assert impatient.ask("What does Nurly Zhol mean?").citations  # readers never wait
    assert impatient.add(article("late", "A late article.")) == "added"


class _Watcher:
    """A progress bar that, halfway through a rebuild's embedding, checks what a reader sees."""

    def __init__(self, check: object) -> None:
        self.total: float | None = None
        self.check = check
        self.seen: list[tuple[int, int]] = []

    def update(self, n: float = 1) -> None:
        self.seen.append(self.check())  # type: ignore[operator]


def test_a_rechunking_rebuild_switches_all_at_once(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    reader = QA(settings, embedder)
    before = reader.counts()
    old_ids = set(faiss_backend(reader).vectors().ids())
    rebuilder = QA(settings.model_copy(update={"chunk_tokens": 64}), embedder)

    def reader_view() -> tuple[int, int]:
        hits = reader.search("What does Nurly Zhol mean?", 3)
        assert hits and all(h.end - h.start > 0 for h in hits)
        return reader.counts()[1], len(set(faiss_backend(reader).vectors().ids()) & old_ids)

    watcher = _Watcher(reader_view)
    after = rebuilder.rebuild(watcher)
    assert watcher.seen and all(seen == (before[1], len(old_ids)) for seen in watcher.seen)  # old generation
    assert after > before[1]
    assert reader.counts()[1] == after and not set(faiss_backend(reader).vectors().ids()) & old_ids  # then all new
    assert faiss_backend(reader).consistent()


def test_a_running_reader_follows_a_rebuild_with_another_model(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    # A second model: the packaged one copied to another path, so it has another name. No fake.
    import shutil

    from qa.embedding import model_path

    other_model = tmp_path / "other-model"
    shutil.copytree(model_path("all-MiniLM-L6-v2"), other_model)
    server = QA(settings, embedder)
    assert server.ask("What does Nurly Zhol mean?").citations
    QA(settings.model_copy(update={"model": str(other_model)})).rebuild()
    answer = server.ask("What does Nurly Zhol mean?")
    assert answer.citations and server.embedder.name == str(other_model)
    assert server.add(article("otter", "Sea otters hold hands while they sleep.")) == "added"
    assert faiss_backend(server).consistent()


def test_sentence_vectors_are_stored_with_each_passage(sample_qa: QA) -> None:
    from qa.text.sentences import sentence_spans

    ids = faiss_backend(sample_qa).store.passage_ids(SAMPLE_ID)
    rows = faiss_backend(sample_qa).store.passages(ids)
    for row in rows.values():
        assert row.sentences is not None and len(row.sentences) == len(sentence_spans(row.text))
        assert all(abs(float((v * v).sum()) - 1.0) < 1e-2 for v in row.sentences)


def test_answering_encodes_only_the_question(sample_qa: QA, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = sample_qa.embedder
    encoded: list[str] = []
    real = embedder.encode

    def recording(texts: list[str], **kwargs: bool) -> object:
        encoded.extend(texts)
        return real(texts, **kwargs)

    monkeypatch.setattr(embedder, "encode", recording)
    question = "Which pipeline will carry gas from Turkmenistan across Kazakhstan to China?"
    assert sample_qa.ask(question).citations
    assert encoded == [question]  # the passages' sentences come from the index


def test_an_index_without_sentence_vectors_still_answers_and_rebuild_adds_them(sample_qa: QA) -> None:
    db = faiss_backend(sample_qa).store.connection()
    db.execute("UPDATE embeddings SET sentences = NULL")  # as an index written before they were stored
    assert "lighted path" in sample_qa.ask("What does Nurly Zhol mean?").answer.lower()
    sample_qa.rebuild()
    assert db.execute("SELECT COUNT(*) FROM embeddings WHERE sentences IS NULL").fetchone()[0] == 0
    assert "lighted path" in sample_qa.ask("What does Nurly Zhol mean?").answer.lower()
