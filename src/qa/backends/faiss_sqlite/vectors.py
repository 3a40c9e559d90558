"""The FAISS index of passage vectors, kept in memory and checkpointed to disk atomically.

Small indexes are searched exactly (flat inner product); past `flat_max` vectors the index becomes an HNSW graph,
optionally with compact storage (float16 or 8-bit scalar quantisation). HNSW cannot remove vectors, so a removed
passage's id is blanked to -1 in the id map (a tombstone) and filtered out during the search; checkpoints compact
the graph once tombstones pile up. SQLite keeps the exact vectors, so any type can be rebuilt without re-embedding.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors

if TYPE_CHECKING:
    from qa.settings import Settings

IndexKind = Literal["auto", "flat", "hnsw"]
Storage = Literal["float32", "float16", "sq8"]

_QUANTISERS: dict[str, Any] = {"float16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}
_LIVE = faiss.IDSelectorRange(0, 2**62)  # every real passage id; tombstones are -1
_SMALL = 10_000  # below this many vectors a compaction is cheap enough to do at every checkpoint
EXACT_CHUNK = 16_384  # vectors reconstructed at a time by an exact restricted search (25 MB at 384 dimensions)
MAX_FILTERED_EF = 16_384  # the widest candidate list a restricted HNSW search uses before searching exactly


@dataclass(frozen=True)
class VectorOptions:
    """Which FAISS index to build: its type (or "auto", by size), storage and HNSW parameters."""

    kind: IndexKind = "auto"
    storage: Storage = "float32"
    flat_max: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 512

    @classmethod
    def from_settings(cls, settings: Settings) -> VectorOptions:
        """The options the QA_VECTOR_* and QA_HNSW_* settings ask for."""
        return cls(
            kind=settings.vector_index,
            storage=settings.vector_storage,
            flat_max=settings.flat_max_vectors,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
        )

    def kind_for(self, size: int, current: str | None = None) -> str:
        """The type for an index of `size` vectors; an HNSW index only turns flat again below half the limit."""
        if self.kind != "auto":
            return self.kind
        if size > self.flat_max or (current == "hnsw" and size > self.flat_max // 2):
            return "hnsw"
        return "flat"

    def new_index(self, dimension: int, kind: str) -> Any:
        """An empty FAISS index of this type, keyed by passage id."""
        base: Any
        if kind == "flat":
            base = faiss.IndexFlatIP(dimension)
        elif self.storage == "float32":
            base = faiss.IndexHNSWFlat(dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexHNSWSQ(dimension, _QUANTISERS[self.storage], self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        if kind == "hnsw":
            base.hnsw.efConstruction = self.hnsw_ef_construction
        return faiss.IndexIDMap2(base)


class VectorIndex:
    """Inner-product search over unit vectors, keyed by passage id; safe to share between threads."""

    def __init__(self, dimension: int, options: VectorOptions | None = None) -> None:
        self.dimension = dimension
        self.options = options or VectorOptions()
        self._index = self.options.new_index(dimension, self.options.kind_for(0))
        self._dead = 0  # tombstones in an HNSW index
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._dead

    @property
    def kind(self) -> str:
        """ "flat" or "hnsw"."""
        return _parameters(self._index)[0]

    @property
    def storage(self) -> str:
        """How vectors are held: "float32", "float16" or "sq8"."""
        return _parameters(self._index)[1]

    def add(self, ids: npt.NDArray[np.int64], vectors: Vectors) -> None:
        """Add vectors under the given passage ids."""
        if not len(ids):
            return
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            if self._index.ntotal == 0:
                # A fresh index takes the type its first batch (e.g. every stored vector) calls for.
                self._index = self.options.new_index(self.dimension, self.options.kind_for(len(ids)))
            if not self._index.is_trained:
                self._index.train(matrix)
            self._index.add_with_ids(matrix, ids.astype(np.int64))

    def remove(self, ids: list[int]) -> None:
        """Remove passage ids; ids not present are ignored."""
        if not ids:
            return
        with self._lock:
            if self.kind == "flat":
                self._index.remove_ids(np.array(ids, dtype=np.int64))
                return
            id_map = faiss.vector_to_array(self._index.id_map)
            gone = np.isin(id_map, np.array(ids, dtype=np.int64)) & (id_map >= 0)
            if gone.any():
                id_map[gone] = -1
                faiss.copy_array_to_vector(id_map, self._index.id_map)
                self._index.construct_rev_map()
                self._dead += int(gone.sum())

    def search(self, query: Vectors, k: int, within: npt.NDArray[np.int64] | None = None) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest vectors; with `within`, of those ids only.

        A restricted search still returns k whenever `within` holds k stored ids: up to QA_FLAT_MAX_VECTORS of
        them are compared exactly, one by one; more are searched with an IDSelector, exactly in a flat index, and
        in an HNSW graph with a candidate list widened by how few of the vectors they are, completed by an exact
        search when the walk comes back short.
        """
        if within is not None:
            return self._search_within(query, k, within)
        with self._lock:
            k = min(k, len(self))
            if k <= 0:
                return []
            params = None
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=max(self.options.hnsw_ef_search, k))  # type: ignore[attr-defined]
                if self._dead:
                    params.sel = _LIVE
            return self._run(query, k, params)

    def _run(self, query: Vectors, k: int, params: Any) -> list[tuple[int, float]]:
        """One FAISS search (the caller holds the lock)."""
        # One query gains nothing from OpenMP threads, and on a busy machine waiting for them costs milliseconds.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _search_within(self, query: Vectors, k: int, within: npt.NDArray[np.int64]) -> list[tuple[int, float]]:
        within = np.asarray(within, dtype=np.int64)
        k = min(k, len(within))
        if k <= 0:
            return []
        with self._lock:
            if len(within) <= self.options.flat_max:
                return self._exact(query, k, within)
            selector = faiss.IDSelectorBatch(within)
            if self.kind == "flat":
                params = faiss.SearchParameters()
                params.sel = selector
                return self._run(query, k, params)
            # The walk meets a matching vector once in total/len(within): widen the candidate list to match.
            share = len(within) / max(1, int(self._index.ntotal))
            ef = min(MAX_FILTERED_EF, max(self.options.hnsw_ef_search, k, math.ceil(2 * k / share)))
            params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
            params.sel = selector  # tombstones (-1) are never in it
            found = self._run(query, k, params)
            return found if len(found) >= k else self._exact(query, k, within)

    def _exact(self, query: Vectors, k: int, within: npt.NDArray[np.int64]) -> list[tuple[int, float]]:
        """The k best of `within` by exact inner product over their stored vectors (the caller holds the lock)."""
        q = query.reshape(-1).astype(np.float32)
        best_ids = np.zeros(0, dtype=np.int64)
        best_scores = np.zeros(0, dtype=np.float32)
        for first in range(0, len(within), EXACT_CHUNK):
            ids = within[first : first + EXACT_CHUNK]
            try:
                vectors = self._index.reconstruct_batch(ids)
            except RuntimeError:  # a passage removed since the caller listed it
                held = faiss.vector_to_array(self._index.id_map)
                ids = ids[np.isin(ids, held[held >= 0])]
                vectors = self._index.reconstruct_batch(ids) if len(ids) else np.zeros((0, len(q)), np.float32)
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, vectors @ q])
            if len(best_ids) > k:
                keep = np.argpartition(-best_scores, k - 1)[:k]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.argsort(-best_scores, kind="stable")[:k]
        return [(int(best_ids[i]), float(best_scores[i])) for i in order]

    def similarity(self, query: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each stored id (ids not present are left out)."""
        out: dict[int, float] = {}
        with self._lock:
            for i in ids:
                try:
                    vector = self._index.reconstruct(int(i))
                except RuntimeError:
                    continue
                out[i] = float(np.dot(vector, query.reshape(-1)))
        return out

    def ids(self) -> npt.NDArray[np.int64]:
        """Every stored id."""
        with self._lock:
            id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return id_map[id_map >= 0]

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file, fsync, then rename), first converting or compacting if due."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            with self._lock:
                self._refit()
                faiss.write_index(self._index, str(tmp))
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def _refit(self) -> None:
        """Rebuild as the type the size now calls for, or without tombstones once they are 10% (or cheap)."""
        total = int(self._index.ntotal)
        wanted = self.options.kind_for(total - self._dead, self.kind)
        if wanted == self.kind and not (self._dead and (self._dead * 10 >= total or total <= _SMALL)):
            return
        id_map = faiss.vector_to_array(self._index.id_map)
        live = id_map >= 0
        matrix = faiss.downcast_index(self._index.index).reconstruct_n(0, total)[live]
        self._index = self.options.new_index(self.dimension, wanted)
        self._dead = 0
        if len(matrix):
            if not self._index.is_trained:
                self._index.train(matrix)
            self._index.add_with_ids(matrix, id_map[live])

    @classmethod
    def load(cls, path: Path, dimension: int, options: VectorOptions | None = None) -> VectorIndex:
        """Read a checkpoint; raises ValueError when it is unreadable, of the wrong shape, or not what options ask."""
        options = options or VectorOptions()
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, OSError) as e:
            raise ValueError(f"unreadable FAISS file {path.name}: {e}") from e
        if index.d != dimension or not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"FAISS file {path.name} does not hold {dimension}-dimensional passage vectors")
        kind, storage, m, ef_construction = _parameters(index)
        dead = int((faiss.vector_to_array(index.id_map) < 0).sum())
        wanted = options.kind_for(int(index.ntotal) - dead, kind)
        built = (kind, storage if kind == "hnsw" else "float32", m, ef_construction)
        if wanted == "flat":
            asked: tuple[str, str, int, int] = ("flat", "float32", 0, 0)
        else:
            asked = ("hnsw", options.storage, options.hnsw_m, options.hnsw_ef_construction)
        if built != asked:
            raise ValueError(
                f"FAISS file {path.name} holds a {_label(built)} index, the settings ask for {_label(asked)}"
            )
        loaded = cls(dimension, options)
        loaded._index = index
        loaded._dead = dead
        return loaded


def _parameters(index: Any) -> tuple[str, str, int, int]:
    """(type, storage, HNSW M, HNSW efConstruction) of an IndexIDMap2-wrapped index."""
    base = faiss.downcast_index(index.index)
    if not isinstance(base, faiss.IndexHNSW):
        return ("flat", "float32", 0, 0)
    storage = faiss.downcast_index(base.storage)
    held = "float32"
    if isinstance(storage, faiss.IndexScalarQuantizer):
        held = "float16" if storage.sq.qtype == faiss.ScalarQuantizer.QT_fp16 else "sq8"
    m = int(base.hnsw.nb_neighbors(1))  # type: ignore[attr-defined]  # missing from faiss's stubs
    return ("hnsw", held, m, int(base.hnsw.efConstruction))


def _label(built: tuple[str, str, int, int]) -> str:
    kind, storage, m, ef_construction = built
    return "flat" if kind == "flat" else f"HNSW {storage} (M={m}, efConstruction={ef_construction})"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
