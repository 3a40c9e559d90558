"""The FAISS index types: exact neighbours, removal, checkpoints, choice by size, and switching type."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fixtures import SAMPLE_ID, faiss_backend
from qa import QA, Article, Settings
from qa.backends.faiss_sqlite.vectors import VectorIndex, VectorOptions
from qa.embedding import SentenceTransformerEmbedder

DIMENSION = 32
TYPES = [
    VectorOptions(kind="flat"),
    VectorOptions(kind="hnsw", storage="float32"),
    VectorOptions(kind="hnsw", storage="float16"),
    VectorOptions(kind="hnsw", storage="sq8"),
]
NAMES = ["flat", "hnsw-float32", "hnsw-float16", "hnsw-sq8"]


def unit_vectors(n: int, seed: int = 0, dimension: int = DIMENSION) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    scaled: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return scaled


def filled(options: VectorOptions, n: int = 500, dimension: int = DIMENSION) -> tuple[VectorIndex, np.ndarray]:
    """An index of n random unit vectors under ids 1000..; returns it and the vectors."""
    vectors = unit_vectors(n, dimension=dimension)
    index = VectorIndex(dimension, options)
    index.add(np.arange(1000, 1000 + n, dtype=np.int64), vectors)
    return index, vectors


def exact(vectors: np.ndarray, query: np.ndarray, k: int, removed: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    order = np.argsort(-(vectors @ query), kind="stable")
    return [int(i) + 1000 for i in order if int(i) + 1000 not in removed][:k]


# Compact storage may swap neighbours whose true scores differ by less than its rounding error.
TOLERANCE = {"float32": 0.0, "float16": 0.002, "sq8": 0.02}


def assert_neighbours(
    index: VectorIndex,
    options: VectorOptions,
    vectors: np.ndarray,
    query: np.ndarray,
    removed: set[int] = frozenset(),  # type: ignore[assignment]
) -> None:
    """The index's top 5 are the exact top 5, or (compact storage) as near as its rounding allows."""
    found = [i for i, _ in index.search(query, 5)]
    expected = exact(vectors, query, 5, removed)
    if options.storage == "float32":
        assert found == expected
        return
    scores = vectors @ query
    assert len(set(found)) == 5 and not set(found) & removed
    assert all(scores[i - 1000] >= scores[expected[-1] - 1000] - TOLERANCE[options.storage] for i in found)


@pytest.mark.parametrize("options", TYPES, ids=NAMES)
def test_each_type_returns_the_exact_neighbours(options: VectorOptions) -> None:
    index, vectors = filled(options)
    assert (index.kind, len(index)) == (options.kind, len(vectors))
    for query in unit_vectors(20, seed=1):
        assert_neighbours(index, options, vectors, query)


@pytest.mark.parametrize("options", TYPES, ids=NAMES)
def test_a_removed_vector_is_never_returned(options: VectorOptions, tmp_path: Path) -> None:
    index, vectors = filled(options)
    queries = unit_vectors(10, seed=2)
    removed = {exact(vectors, q, 1)[0] for q in queries} | {1000, 1001}
    index.remove([*sorted(removed), 999_999])  # an id never added is ignored
    assert len(index) == len(vectors) - len(removed)
    assert not removed & set(index.ids().tolist())
    assert not removed & set(index.similarity(queries[0], sorted(removed)))
    searched = index
    for saved in (False, True):  # HNSW: tombstones filtered in the search, then compacted by the checkpoint
        if saved:
            index.save(tmp_path / "v.faiss")
            searched = VectorIndex.load(tmp_path / "v.faiss", DIMENSION, options)
        for q in queries:
            assert_neighbours(searched, options, vectors, q, removed)
        assert len(searched.search(queries[0], len(vectors))) == len(vectors) - len(removed)


def test_hnsw_tombstones_survive_a_checkpoint_until_compaction(tmp_path: Path) -> None:
    options = VectorOptions(kind="hnsw")
    index, vectors = filled(options, n=12_000, dimension=8)  # big enough that a few removals are not compacted
    query = unit_vectors(1, seed=3, dimension=8)[0]
    nearest = exact(vectors, query, 3)
    index.remove(nearest)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 8, options)
    assert loaded._dead == 3 and len(loaded) == len(vectors) - 3
    assert not set(nearest) & {i for i, _ in loaded.search(query, 10)}
    loaded.remove([int(i) for i in loaded.ids()[: len(vectors) // 10]])  # 10% gone: the next checkpoint compacts
    loaded.save(tmp_path / "v.faiss")
    compacted = VectorIndex.load(tmp_path / "v.faiss", 8, options)
    assert compacted._dead == 0 and np.array_equal(np.sort(compacted.ids()), np.sort(loaded.ids()))


@pytest.mark.parametrize("options", TYPES, ids=NAMES)
def test_a_checkpoint_loads_back_the_same_index(options: VectorOptions, tmp_path: Path) -> None:
    index, _ = filled(options)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", DIMENSION, options)
    assert (loaded.kind, loaded.storage, len(loaded)) == (index.kind, index.storage, len(index))
    for query in unit_vectors(10, seed=4):
        assert loaded.search(query, 5) == index.search(query, 5)


def test_a_checkpoint_of_another_type_is_refused(tmp_path: Path) -> None:
    index, _ = filled(VectorOptions(kind="flat"))
    index.save(tmp_path / "v.faiss")
    for other in TYPES[1:]:
        with pytest.raises(ValueError, match="settings ask for HNSW"):
            VectorIndex.load(tmp_path / "v.faiss", DIMENSION, other)
    hnsw, _ = filled(VectorOptions(kind="hnsw"))
    hnsw.save(tmp_path / "h.faiss")
    with pytest.raises(ValueError, match=r"M=16"):
        VectorIndex.load(tmp_path / "h.faiss", DIMENSION, VectorOptions(kind="hnsw", hnsw_m=16))


def test_auto_is_flat_while_small_and_hnsw_past_the_limit(tmp_path: Path) -> None:
    options = VectorOptions(kind="auto", flat_max=300)
    small, _ = filled(options, n=300)
    large, _ = filled(options, n=301)
    assert (small.kind, large.kind) == ("flat", "hnsw")
    vectors = unit_vectors(400, seed=5)
    growing = VectorIndex(DIMENSION, options)
    growing.add(np.arange(1, 201, dtype=np.int64), vectors[:200])
    growing.add(np.arange(201, 401, dtype=np.int64), vectors[200:])  # grows past the limit between checkpoints
    assert growing.kind == "flat"
    growing.save(tmp_path / "v.faiss")  # the checkpoint converts it
    assert growing.kind == "hnsw" and VectorIndex.load(tmp_path / "v.faiss", DIMENSION, options).kind == "hnsw"
    growing.remove(list(range(1, 201)))  # 200 left: above half the limit, so it stays HNSW
    growing.save(tmp_path / "v.faiss")
    assert growing.kind == "hnsw"
    growing.remove(list(range(201, 300)))
    growing.save(tmp_path / "v.faiss")
    assert growing.kind == "flat" and len(growing) == 101


def _hnsw(settings: Settings) -> Settings:
    return settings.model_copy(update={"vector_index": "hnsw", "vector_storage": "sq8"})


def test_switching_type_rebuilds_from_stored_vectors_without_embedding(
    sample_qa: QA,
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert faiss_backend(sample_qa).vectors().kind == "flat"
    passages = sample_qa.counts()[1]

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("switching the index type must not re-embed")

    monkeypatch.setattr(embedder, "encode", no_encoding)
    switched = QA(_hnsw(settings), embedder)
    vectors = faiss_backend(switched).vectors()  # the flat checkpoint is refused and rebuilt from SQLite
    assert (vectors.kind, vectors.storage, len(vectors)) == ("hnsw", "sq8", passages)
    assert "settings ask for HNSW" in caplog.text
    faiss_backend(switched).checkpoint()
    caplog.clear()
    assert faiss_backend(QA(_hnsw(settings), embedder)).vectors().kind == "hnsw"
    assert "rebuilding" not in caplog.text  # the new checkpoint is of the asked type
    assert faiss_backend(switched).consistent()
    monkeypatch.undo()
    assert switched.ask("What does Nurly Zhol mean?").citations[0].article_id == SAMPLE_ID


def test_a_deleted_article_is_never_found_through_hnsw(
    sample_qa: QA, settings: Settings, embedder: SentenceTransformerEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    qa = QA(_hnsw(settings), embedder)
    qa.add(Article(id="zebra", title="Z", text="The zebra crossing festival in Plovdiv drew nine thousand visitors."))
    assert qa.search("zebra crossing festival Plovdiv", 1)[0].article_id == "zebra"
    qa.delete("zebra")
    assert all(h.article_id != "zebra" for h in qa.search("zebra crossing festival Plovdiv", 50))
    assert faiss_backend(qa).consistent()
    faiss_backend(qa).checkpoint()
    reader = QA(_hnsw(settings), embedder)
    assert all(h.article_id != "zebra" for h in reader.search("zebra crossing festival Plovdiv", 50))
    assert faiss_backend(reader).consistent()
