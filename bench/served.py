"""`qa serve` on a free port in another process, for the benchmarks that measure over real HTTP."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx


@contextmanager
def served(
    index_dir: Path, timeout: float = 120.0, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[httpx.Client]:
    """A client for a `qa serve [args]` over `index_dir`, once /healthz answers; the server stops on exit."""
    with served_process(index_dir, timeout, env, args=args) as (client, _):
        yield client


@contextmanager
def served_process(
    index_dir: Path,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    args: Sequence[str] = (),
    log_file: Path | None = None,
    open_files: int | None = None,
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """`served`, with extra QA_* environment, uvicorn workers and serve options, also yielding the process.

    The server's output is discarded unless `log_file` names a file for it (stdout and stderr, appended);
    `open_files` sets its open-file limit, soft and hard (`qa serve` raises the soft limit to the hard one).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = log_file.open("ab") if log_file is not None else None  # closed in the finally below
    server = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port), "--workers", str(workers), *args],
        # One benchmark client sends far more than a reader would: the per-client rate limit is off by default.
        env={**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_RATE_LIMIT": "0", **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=None if open_files is None else lambda: _limit_open_files(open_files),
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)  # a benchmark waiting for its server, not a test
            yield client, server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if log is not None:
            log.close()


def _limit_open_files(limit: int) -> None:
    """In the child, before `qa serve` starts: at most `limit` open files, which it cannot raise."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def finish(results: dict[str, Any], as_json: bool, print_tables: Callable[[dict[str, Any]], None]) -> NoReturn:
    """Print a bench's results (one JSON object, or its tables and the load average around it) and exit 1 when it
    found problems."""
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        print_tables(results)
        print(
            f"\nload average (1, 5, 15 min) before {results['load_average_before']}, after "
            f"{results['load_average_after']}"
        )
    sys.exit(1 if results["problems"] else 0)
