"""The FAISS index of passage vectors, kept in memory and checkpointed to disk atomically."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from qa.embedding import Vectors


class VectorIndex:
    """Exact inner-product search over unit vectors, keyed by passage id; safe to share between threads."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: npt.NDArray[np.int64], vectors: Vectors) -> None:
        """Add vectors under the given passage ids."""
        if len(ids):
            with self._lock:
                self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def remove(self, ids: list[int]) -> None:
        """Remove passage ids; ids not present are ignored."""
        if ids:
            with self._lock:
                self._index.remove_ids(np.array(ids, dtype=np.int64))  # type: ignore[arg-type]  # the SWIG wrapper takes arrays

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """(passage id, cosine similarity) of the k nearest vectors."""
        with self._lock:
            k = min(k, int(self._index.ntotal))
            if k <= 0:
                return []
            scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

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
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def save(self, path: Path) -> None:
        """Write atomically: a temporary file, fsync, then rename over the target."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            with self._lock:
                faiss.write_index(self._index, str(tmp))
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path, dimension: int) -> VectorIndex:
        """Read a checkpoint; raises ValueError when it is unreadable or of the wrong shape."""
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, OSError) as e:
            raise ValueError(f"unreadable FAISS file {path.name}: {e}") from e
        if index.d != dimension or not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"FAISS file {path.name} does not hold {dimension}-dimensional passage vectors")
        loaded = cls(dimension)
        loaded._index = index
        return loaded


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
