"""Running the app under uvicorn: connection limits, proxies, and a log that survives a flood of errors."""

from __future__ import annotations

import asyncio
import ctypes
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


def return_large_blocks(threshold: int) -> bool:
    """Have malloc serve blocks of `threshold` bytes or more from their own mappings, returned to the system when
    freed; True when the C library took the setting (glibc), False where it has no such knob or `threshold` is 0.

    By default glibc raises this threshold, up to 32 MB, each time it frees such a block; from then on the model's
    temporary buffers (several MB per batch) are carved from the heap, where concurrent requests and writes leave
    them interleaved with long-lived objects, and a serving process grew about 5 MB a minute for as long as it
    ran (#10's soak; bench/memory_profile.py: 84 MB over 1,400 requests with uploads from 8 threads, 15 MB with
    the threshold fixed at 1 MB, which levels off). Fixing the threshold also turns off glibc's raising of it.
    """
    if threshold <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


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
