"""Running the app under uvicorn: connection limits, proxies, and a log that survives a flood of errors."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import resource
import threading
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.settings import Settings

REPEAT_INTERVAL = 60.0  # seconds during which the same error is logged once


class IdleTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, also closing a connection that sends nothing within the keep-alive timeout.

    uvicorn times out idle connections only after a response; one that connects and never sends a request would
    hold its file descriptor for good, and enough of them exhaust the process's descriptors.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)


class OncePerInterval(logging.Filter):
    """Lets a given message through once per interval; the next one after that says how many were held back."""

    def __init__(self, interval: float = REPEAT_INTERVAL, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # (logger, message) -> (last shown, held back)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            shown, held = self._seen.get(key, (-self.interval, 0))
            if now - shown < self.interval:
                self._seen[key] = (shown, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # bounded: forget the oldest messages
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                    del self._seen[old]
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:.0f} s, not logged)"
        return True


def throttle_repeated_errors(interval: float = REPEAT_INTERVAL) -> None:
    """Log each error of the event loop and of uvicorn once per interval (descriptor exhaustion repeats forever)."""
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerInterval) for f in logger.filters):
            logger.addFilter(OncePerInterval(interval))


M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
_release_thread: threading.Thread | None = None
_release_lock = threading.Lock()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has mallopt and malloc_trim), else None."""
    libc = ctypes.CDLL(None)
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None  # musl, macOS: nothing to set
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def return_large_blocks(threshold: int) -> bool:
    """Have malloc serve blocks of `threshold` bytes or more from their own mappings, returned to the system when
    freed; True when the C library took the setting (glibc), False where it has no such knob or `threshold` is 0.

    By default glibc raises this threshold, up to 32 MB, each time it frees such a block; from then on the model's
    temporary buffers (several MB per batch) are carved from the heap, where concurrent requests and writes leave
    them interleaved with long-lived objects (bench/memory_profile.py: 84 MB over 1,400 requests with uploads from
    8 threads, 15 MB with the threshold fixed at 1 MB, which levels off). Fixing it turns off the raising.
    """
    libc = _glibc() if threshold > 0 else None
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, threshold))


def release_free_memory() -> bool:
    """Give the free pages inside malloc's heaps back to the system now (glibc's malloc_trim); True if any went.

    Freed memory inside a heap stays the process's until a whole free stretch sits at the heap's top; with many
    threads allocating and freeing, it rarely does, and a server's resident memory rises by what it has freed
    (#10's soak: 5 MB a minute; one malloc_trim took the server from 935 to 774 MB).
    """
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))


def release_free_memory_every(interval: float) -> threading.Thread | None:
    """Call release_free_memory every `interval` seconds in a daemon thread, one per process (a second call,
    say from a second app in the same process, starts nothing); None when off (0), not glibc, or already running.
    """
    global _release_thread
    if interval <= 0 or _glibc() is None:
        return None
    with _release_lock:
        if _release_thread is not None and _release_thread.is_alive():
            return None

        def run() -> None:
            while True:
                time.sleep(interval)  # a period, not a synchronisation
                release_free_memory()

        _release_thread = threading.Thread(target=run, name="qa-release-memory", daemon=True)
        _release_thread.start()
        return _release_thread


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit to the hard limit (connections are files); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `qa serve` passes to uvicorn.run besides the app, host, port and workers."""
    return {
        "http": IdleTimeoutProtocol,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keepalive_timeout,
        # X-Forwarded-For is believed only from the proxies named (uvicorn would trust 127.0.0.1 by default).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or "",
        "server_header": False,
        "log_level": "warning",
        "access_log": False,  # qa.server.access_log writes one line per request instead (QA_LOG_FORMAT)
    }
