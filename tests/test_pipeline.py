"""The ingest pipeline's plumbing, fast: a deterministic fake embedder (the real model runs end to end elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import FakeEmbedder, faiss_backend
from qa import QA, Article, Settings


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def quick(tmp_path: Path, fake: FakeEmbedder) -> QA:
    return QA(Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus"), fake)


def story(article_id: str, *sentences: str) -> Article:
    return Article(id=article_id, title=article_id, text=" ".join(sentences))


def test_an_unchanged_article_is_not_embedded_again(quick: QA, fake: FakeEmbedder) -> None:
    assert quick.add(story("a", "The ferry left at dawn.")) == "added"
    fake.embedded.clear()
    assert quick.add(story("a", "The ferry left at dawn.")) == "unchanged"
    assert fake.embedded == []


def test_identical_passages_in_two_articles_are_embedded_once(quick: QA, fake: FakeEmbedder) -> None:
    quick.indexer.upsert([story("a", "Rates held at four percent."), story("b", "Rates held at four percent.")])
    assert fake.embedded == ["Rates held at four percent."]
    assert quick.counts() == (2, 2)


def test_a_changed_article_embeds_only_its_new_passages(quick: QA, fake: FakeEmbedder) -> None:
    quick.add(story("a", "First version."))
    quick.add(story("b", "Second article."))
    fake.embedded.clear()
    assert quick.add(story("a", "Second article.")) == "updated"  # its new text is already embedded for b
    assert fake.embedded == []
    assert quick.add(story("a", "Third version.")) == "updated"
    assert fake.embedded == ["Third version."]


def test_the_last_copy_of_an_id_in_one_batch_wins(quick: QA) -> None:
    statuses = quick.indexer.upsert([story("a", "Old text."), story("a", "New text.")])
    assert statuses == {"a": "added"}
    assert quick.article("a").text == "New text."


def test_a_rebuild_with_the_same_settings_embeds_nothing(quick: QA, fake: FakeEmbedder) -> None:
    quick.indexer.upsert([story(f"s{i}", f"Story number {i} about the harbour.") for i in range(5)])
    fake.embedded.clear()
    assert quick.rebuild() == 5
    assert fake.embedded == []


def test_a_rebuild_after_a_chunking_change_re_chunks_every_article(
    tmp_path: Path, quick: QA, fake: FakeEmbedder
) -> None:
    long_text = " ".join(f"Sentence {i} says something about the harbour." for i in range(40))
    quick.add(Article(id="long", title="Long", text=long_text))
    passages = quick.counts()[1]
    smaller = QA(quick.settings.model_copy(update={"chunk_tokens": 48}), fake)
    assert smaller.rebuild() > passages
    assert smaller.counts()[1] > passages and smaller.article("long").text == long_text


def test_re_ingesting_unchanged_files_chunks_and_embeds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text("Harbour news\n\nThe ferry left at dawn.")
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus)
    assert QA(settings, FakeEmbedder()).ingest().added == ["one.txt"]

    class NoModel(FakeEmbedder):
        def count_tokens(self, texts: object) -> list[int]:
            raise AssertionError("an unchanged corpus needs no model")

    assert QA(settings, NoModel()).ingest().unchanged == ["one.txt"]


def test_a_reader_catching_up_reads_only_the_new_passages_vectors(tmp_path: Path, fake: FakeEmbedder) -> None:
    """The cost of bringing a reader's FAISS index up to date with a write follows the write, not the index.

    With a long list of ids, SQLite's planner walked every stored vector of the model once per chunk of ids, so
    the first search after a 5,000-passage upload waited seconds (SECURITY.md, "One 5 MB sentence").
    """
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")
    writer = QA(settings, fake)

    def steps_to_read_new_vectors(new: list[int]) -> int:
        store = faiss_backend(writer).store
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        store.connection().set_progress_handler(count, 100)  # called every 100 SQLite VM instructions
        try:
            ids, _ = store.vectors(fake.name, fake.dimension, new)
        finally:
            store.connection().set_progress_handler(None, 100)
        assert sorted(ids.tolist()) == sorted(new)
        return counted[0]

    def add(count: int, tag: str) -> list[int]:
        for n in range(count):
            writer.add(story(f"{tag}{n}", f"Story {tag} {n} tells of harbour {n} and its ferry {n * 7}."))
        return [i for n in range(count) for i in faiss_backend(writer).passage_ids(f"{tag}{n}")]

    new = add(40, "a")
    small_index = steps_to_read_new_vectors(new)
    add(400, "b")
    large_index = steps_to_read_new_vectors(new)
    assert large_index < 2 * small_index + 10, (small_index, large_index)
