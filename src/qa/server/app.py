"""The FastAPI application: JSON API, HTML pages, static files, error mapping and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from qa import __doc__ as package_doc
from qa.server import access_log, metrics, openai_chat
from qa.server.api import document_limits, health_router
from qa.server.api import router as api_router
from qa.server.assets import WEB_DIR, templates
from qa.server.errors import SECURITY_HEADERS, install_error_handlers
from qa.server.limits import MULTIPART_ALLOWANCE, RequestLimits, TokenBucket
from qa.server.mcp_http import mcp_sessions, mount_mcp
from qa.server.pages import render_error
from qa.server.pages import router as web_router
from qa.server.serving import release_free_memory_every, return_large_blocks, throttle_repeated_errors
from qa.service import QA
from qa.settings import Settings


def create_app(qa: QA | None = None) -> FastAPI:
    """The web app around a QA object (built from the QA_* settings when none is given)."""
    qa = qa or QA(Settings())
    return_large_blocks(qa.settings.mmap_threshold)  # in every worker process, before it embeds anything
    release_free_memory_every(qa.settings.memory_release_interval)
    throttle_repeated_errors()
    app = FastAPI(
        title="qa",
        description=(package_doc or "").strip().splitlines()[0],
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=mcp_sessions,
    )
    app.state.qa = qa
    settings = qa.settings
    app.state.rate_limiter = TokenBucket(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
    failures = settings.auth_failures
    app.state.auth_failures = TokenBucket(failures / 60, failures) if failures else None
    app.include_router(api_router)
    app.include_router(openai_chat.router)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = document_limits(
                default_openapi(), settings.max_question_chars, settings.max_top_k, settings.max_history_turns
            )
            app.openapi_schema = openai_chat.document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health_router)
    app.include_router(metrics.router)
    mount_mcp(app, qa)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    _serve_docs_offline(app)
    install_error_handlers(app, render_error)

    # add_middleware puts each new layer outside the last: the body cap and method check run before any body is
    # read, CORS answers preflights before the method check, and every response gets the security headers.
    app.add_middleware(RequestLimits, max_body=settings.max_upload_bytes + MULTIPART_ALLOWANCE)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            # MCP's streamable HTTP sends its protocol version and session headers (browser clients at /mcp).
            allow_headers=["Authorization", "Content-Type", "Mcp-Protocol-Version", "Mcp-Session-Id"],
            expose_headers=["Mcp-Session-Id", "X-Request-ID"],
            max_age=600,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # Outermost: the access log times the whole request, and every response carries its X-Request-ID.
    access_log.configure(settings.log_format)
    observers = [access_log.log_request, _count_request]
    app.add_middleware(access_log.AccessLog, observers=observers, routes=app.router.routes)
    return app


def _count_request(record: access_log.RequestRecord) -> None:
    metrics.observe_request(record.method, record.route, record.status, record.duration_ms / 1000)


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI 5 at /docs from the fastapi-offline package's files, not a CDN, started by a static script (no
    inline script, so /docs keeps the same Content-Security-Policy as every other page)."""
    from pathlib import Path

    import fastapi_offline  # only its bundled Swagger UI files are used

    swagger_ui = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=swagger_ui), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        return templates.TemplateResponse(request, "docs.html", {})
