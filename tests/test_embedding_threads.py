"""The model's tokenizer is shared by every thread that embeds (a watcher batch and an upload at once, since
embedding happens outside the writer lock): no call may change its padding or truncation under another.

bench/soak.py found it: a watched-folder batch failed with "expected sequence of length 102 at dim 1 (got 117)"
while an upload was being embedded, because computing word-piece offsets switched the shared tokenizer's padding
off between the other thread's setting it and encoding its batch.
"""

from __future__ import annotations

from typing import Any

from fixtures import CORPUS
from qa.embedding import SentenceTransformerEmbedder
from qa.text.sentences import sentence_spans


def shared_state(embedder: SentenceTransformerEmbedder) -> tuple[Any, Any]:
    backend = embedder._model.tokenizer.backend_tokenizer
    return backend.padding, backend.truncation


def test_sentence_vectors_leave_the_shared_tokenizer_as_batches_need_it(embedder: SentenceTransformerEmbedder) -> None:
    embedder.encode(["A short text.", "A longer text, so that this batch needs padding to be a tensor."])
    before = shared_state(embedder)
    assert before[0] is not None  # the model's own encoding pads its batches
    texts = ["One sentence. And a second one.", "A third sentence, in a passage of its own."]
    embedder.encode_with_spans(texts, [sentence_spans(t) for t in texts])
    assert shared_state(embedder) == before


def test_offsets_are_the_model_tokenizers_own(embedder: SentenceTransformerEmbedder) -> None:
    text = next(CORPUS.glob("*.txt")).read_text()
    texts = [text[:300], text[:5_000], "x" * 2_000 + " tail"]  # short, truncated at the window, one [UNK] piece
    expected = embedder._model.tokenizer(
        texts, return_offsets_mapping=True, truncation=True, max_length=embedder.max_tokens
    )["offset_mapping"]
    got = [encoding.offsets for encoding in embedder._offsets.encode_batch(texts)]
    assert [list(map(tuple, row)) for row in expected] == [list(map(tuple, row)) for row in got]
