"""One writer at a time per index, across threads and processes."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.errors import IndexBusy


class WriterLock:
    """An exclusive lock on a file in the index folder; readers never take it."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._file: int | None = None

    @property
    def depth(self) -> int:
        """How many nested holds this thread has (0 when the lock is free)."""
        return self._depth

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock, waiting up to `timeout` seconds for another writer to finish."""
        if not self._thread_lock.acquire(timeout=self.timeout if self.timeout > 0 else -1):
            raise IndexBusy(f"another writer is updating the index in {self.path.parent}")
        try:
            if self._depth == 0:
                self._acquire_file()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release_file()
        finally:
            self._thread_lock.release()

    def _acquire_file(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexBusy(
                        f"another process is writing to the index in {self.path.parent}; try again when it is done"
                    ) from None
                time.sleep(0.05)  # flock has no timed wait; poll gently
        self._file = fd

    def _release_file(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            os.close(self._file)
            self._file = None
