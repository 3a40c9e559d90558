"""The MCP server mounted at /mcp over streamable HTTP: same process, same index, same rate limit as /api.

Stateless and with plain JSON replies: every request stands alone, so any worker or replica can answer it and
proxies need no streaming. Browsers may call /mcp only from QA_CORS_ORIGINS (an Origin header from anywhere
else gets 403), which is what the MCP specification asks of servers against DNS rebinding; clients that are
not browsers send no Origin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from qa.mcp.server import create_mcp_server
from qa.server.errors import error_response
from qa.server.limits import rate_limit_refusal
from qa.server.metrics import RATE_LIMITED
from qa.service import QA

MCP_PATH = "/mcp"


def mount_mcp(app: FastAPI, qa: QA) -> None:
    """Serve `qa`'s MCP server at /mcp; `mcp_sessions` (the app's lifespan) runs its session manager."""
    server = create_mcp_server(qa, rate_check=_rate_check)
    app.state.mcp = server
    app.router.routes.append(Route(MCP_PATH, endpoint=MCPEndpoint(server, qa.settings.cors_origins)))


@asynccontextmanager
async def mcp_sessions(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan: the MCP session manager runs while the app does (a fresh one each time the app starts)."""
    server: MCPServer = app.state.mcp
    server.streamable_http_app(  # builds the session manager; its routes are ours (MCPEndpoint)
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # Host checks would refuse every name but localhost, breaking deployments behind a proxy; the Origin
        # check is MCPEndpoint's.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        yield


class MCPEndpoint:
    """ASGI app for /mcp: checks a browser's Origin, then hands the request to the running session manager."""

    def __init__(self, server: MCPServer, allowed_origins: list[str]) -> None:
        self.server = server
        self.allowed_origins = set(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = Request(scope).headers.get("origin")
        if origin is not None and origin not in self.allowed_origins:
            message = f"origin {origin!r} may not call /mcp; allow it with QA_CORS_ORIGINS"
            response = error_response(MCP_PATH, 403, message)
            assert response is not None
            await response(scope, receive, send)
            return
        await self.server.session_manager.handle_request(scope, receive, send)


def _rate_check(request: Request) -> str | None:
    """ask and search over /mcp take from the caller's bucket, as /api/ask and /api/search do."""
    refusal = rate_limit_refusal(request)
    if refusal is None:
        return None
    RATE_LIMITED.labels(MCP_PATH).inc()
    return str(refusal.detail)
