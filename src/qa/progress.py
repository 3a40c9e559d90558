"""What long work reports its progress to."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A progress bar (tqdm fits): its total can be set, and it advances by the work just finished."""

    total: float | None

    def update(self, n: float = 1) -> bool | None:
        """Advance by n."""
        ...
