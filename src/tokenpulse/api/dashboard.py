"""The dashboard at ``/`` (SPEC §11): plain HTML, CSS and JavaScript written in this project.

The page (``static/dashboard.html``) is served at ``/`` with what its scripts need to know in
data attributes of ``<body>`` — whether auth is on, whether session tokens exist
(``POST /api/v1/sessions``), ``STALE_AFTER`` and the version — so it needs no inline script
and runs under a strict Content-Security-Policy. Its scripts and styles are static files at
``/dashboard/``. Neither is part of the OpenAPI document. The scripts read the live SSE
streams and the REST API like any client (with the user's key when auth is on).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from tokenpulse import __version__

STATIC = Path(__file__).parent / "static"
ASSETS = STATIC / "dashboard"
ASSETS_PATH = "/dashboard"
SESSIONS_PATH = "/api/v1/sessions"
#: Everything from this origin only; no inline script or style, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _offers_sessions(app: FastAPI) -> bool:
    """Whether this service exchanges keys for session tokens (SPEC §8.4)."""
    return any(
        isinstance(route, Route) and route.path == SESSIONS_PATH and "POST" in (route.methods or ())
        for route in app.router.routes
    )


def install_dashboard(api: FastAPI, *, auth_enabled: bool, stale_after: float) -> None:
    """Serve the dashboard page at ``/`` and its files under ``/dashboard/``."""
    template = (STATIC / "dashboard.html").read_text(encoding="utf-8")
    router = APIRouter(include_in_schema=False)

    @router.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        """The dashboard page."""
        values = {
            "auth": "true" if auth_enabled else "false",
            "sessions": "true" if _offers_sessions(request.app) else "false",
            "stale_after_ms": str(round(stale_after * 1000)),
            "version": __version__,
        }
        page = template
        for name, value in values.items():
            page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
        return HTMLResponse(page, headers=PAGE_HEADERS)

    api.include_router(router)
    api.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="dashboard")


__all__ = ["install_dashboard"]
