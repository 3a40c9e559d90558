"""The embedder's cache of short texts is bounded and keeps what is used: a question asked again, or a turn of a
conversation under way, is not embedded twice, while texts nobody asks for again make way (#10's soak: a server's
caches must reach their steady size within minutes)."""

from __future__ import annotations

from collections.abc import Sequence

from qa.embedding import SentenceTransformerEmbedder, Vectors


def recording(embedder: SentenceTransformerEmbedder) -> list[str]:
    """The texts the model is asked to embed from now on (the real model still embeds them)."""
    seen: list[str] = []
    encode = embedder.encode

    def spy(texts: Sequence[str]) -> Vectors:
        seen.extend(texts)
        return encode(texts)

    embedder.encode = spy  # type: ignore[method-assign]
    return seen


def test_a_text_in_use_stays_and_the_least_recently_used_goes(embedder: SentenceTransformerEmbedder) -> None:
    small = SentenceTransformerEmbedder(embedder.name, cache_size=2)
    embedded = recording(small)
    first = small.encode_cached(["What did Kazakhstan sign?"])
    small.encode_cached(["Who built the railway?"])
    again = small.encode_cached(["What did Kazakhstan sign?"])  # used again: now the most recent
    small.encode_cached(["When does the pipeline open?"])  # one too many: the railway question goes
    small.encode_cached(["What did Kazakhstan sign?", "Who built the railway?"])
    assert embedded == [
        "What did Kazakhstan sign?",
        "Who built the railway?",
        "When does the pipeline open?",
        "Who built the railway?",
    ]
    assert (first == again).all()


def test_the_serving_default_is_bounded(embedder: SentenceTransformerEmbedder) -> None:
    texts = [f"Question number {n}?" for n in range(5)]
    small = SentenceTransformerEmbedder(embedder.name, cache_size=3)
    small.encode_cached(texts)
    assert len(small._cache) == 3
    assert SentenceTransformerEmbedder.CACHE_SIZE <= 4_096
