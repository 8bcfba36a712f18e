"""/docs works offline: headless Chromium renders the operations from files served by the app
itself (fastapi-offline's), and no request leaves loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.contract.conftest import LiveApp, live_settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with LiveApp(live_settings(tmp_path_factory.mktemp("docs"))) as app:
        yield app


@pytest.mark.parametrize(
    ("path", "expected"), [("/docs", ["getLtp", "/api/v1/ltp"]), ("/redoc", ["/api/v1/ltp"])]
)
def test_the_docs_render_offline(live_app: LiveApp, path: str, expected: list[str]) -> None:
    from playwright.sync_api import Route, sync_playwright

    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(f"{route.request.resource_type} {route.request.url}")
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            errors: list[Any] = []
            # Playwright needs a Python function here: a bound builtin like list.append fails.
            page.on("pageerror", lambda error: errors.append(error))  # noqa: PLW0108
            page.goto(f"{live_app.base_url}{path}")
            for text in expected:
                page.get_by_text(text, exact=False).first.wait_for(timeout=20_000)
            content = page.content()
        finally:
            browser.close()
    # ReDoc's sidebar links a decorative "Redocly" logo image from its CDN; it is blocked here,
    # and nothing the page needs (script, style, font, data) may leave loopback.
    assert [url for url in outside if not url.startswith("image https://cdn.redoc.ly/")] == []
    if path == "/docs":
        assert outside == []
    assert errors == []
    assert "cdn.jsdelivr.net" not in content


def test_the_go_docs_path_redirects_to_docs(live_app: LiveApp) -> None:
    for path in ("/swagger/", "/swagger/index.html", "/swagger"):
        response = httpx.get(f"{live_app.base_url}{path}", follow_redirects=False)
        assert response.status_code == 302, path
        assert response.headers["location"] == "/docs"
    docs = httpx.get(f"{live_app.base_url}/swagger/", follow_redirects=True)
    assert docs.status_code == 200
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text
