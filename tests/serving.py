"""A real HTTP server for tests that need one (the openai and MCP clients, a Prometheus scrape): uvicorn on
127.0.0.1, on a port the OS picks, in a thread of the test process, ready once /healthz answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

READY_TIMEOUT = 60.0  # seconds for /healthz to answer once the server thread has started


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn until the block ends; yields its base URL (http://127.0.0.1:PORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them, so polling never spins
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_until_ready(base: str, thread: threading.Thread) -> None:
    """Poll /healthz (each attempt waits for its connection) until it answers 200."""
    with httpx.Client(timeout=READY_TIMEOUT) as client:
        for _ in range(1000):
            if not thread.is_alive():
                raise RuntimeError("the server thread ended before it was ready")
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                continue
    raise RuntimeError(f"{base}/healthz never answered 200")
