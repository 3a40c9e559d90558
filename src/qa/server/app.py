"""The FastAPI application: JSON API, HTML pages, static files, error mapping and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from qa import __doc__ as package_doc
from qa.server.api import document_limits, health_router
from qa.server.api import router as api_router
from qa.server.assets import WEB_DIR, templates
from qa.server.errors import install_error_handlers
from qa.server.limits import MULTIPART_ALLOWANCE, RequestLimits, TokenBucket
from qa.server.pages import render_error
from qa.server.pages import router as web_router
from qa.service import QA
from qa.settings import Settings

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(qa: QA | None = None) -> FastAPI:
    """The web app around a QA object (built from the QA_* settings when none is given)."""
    qa = qa or QA(Settings())
    app = FastAPI(
        title="qa",
        description=(package_doc or "").strip().splitlines()[0],
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.qa = qa
    settings = qa.settings
    app.state.rate_limiter = TokenBucket(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
    app.include_router(api_router)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_limits(
                default_openapi(), settings.max_question_chars, settings.max_top_k, settings.max_history_turns
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health_router)
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
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


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
