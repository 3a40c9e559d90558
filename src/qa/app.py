"""The FastAPI application: JSON API, HTML pages, static files, error mapping and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from qa import __doc__ as package_doc
from qa.api import health_router
from qa.api import router as api_router
from qa.http_errors import install_error_handlers
from qa.service import QA
from qa.settings import Settings
from qa.web import WEB_DIR, render_error
from qa.web import router as web_router

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The interactive docs page has an inline script of its own; it is left without the policy.
_DOCS_PATHS = ("/docs",)


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
    app.include_router(api_router)
    app.include_router(health_router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    _serve_docs_offline(app)
    install_error_handlers(app, render_error)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            if name == "Content-Security-Policy" and request.url.path.startswith(_DOCS_PATHS):
                continue
            response.headers.setdefault(name, value)
        return response

    return app


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package, not a CDN: no network at run time."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="qa API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
