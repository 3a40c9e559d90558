"""What an index records about how it was built, and the checks that refuse to mix models or chunkings."""

from __future__ import annotations

from collections.abc import Mapping

from qa.errors import IndexMismatch
from qa.indexing.chunking import ChunkingPolicy


def build_settings(model: str, dimension: int, policy: ChunkingPolicy) -> dict[str, str]:
    """The values a back end records on its first write and after a rebuild."""
    return {
        "model": model,
        "dimension": str(dimension),
        "chunking": policy.label(),
        "chunk_tokens": str(policy.max_tokens),
        "chunk_overlap": str(policy.overlap),
    }


def check_model(recorded: Mapping[str, str], wanted: str, where: str) -> None:
    """IndexMismatch when the stored vectors come from another model than the one asked for."""
    model = recorded.get("model")
    if model and model != wanted:
        raise IndexMismatch(
            f"{where} was built with model {model!r}, not {wanted!r}:"
            f" set QA_MODEL={model} or run `qa rebuild` to re-embed with {wanted!r}"
        )


def check_chunking(recorded: Mapping[str, str], policy: ChunkingPolicy, where: str) -> None:
    """IndexMismatch when the stored passages were cut differently from what the settings ask for."""
    chunking = recorded.get("chunking")
    if chunking and chunking != policy.label():
        raise IndexMismatch(
            f"{where} was chunked as {chunking!r}, the settings ask for {policy.label()!r}:"
            " run `qa rebuild` to re-chunk it"
        )
