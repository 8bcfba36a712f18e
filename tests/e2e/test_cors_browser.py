"""CORS from a real browser (SPEC §8.5): a page on another loopback origin uses the API with a
`fetch` and an `EventSource`; both work when its origin is allowed and both fail when not."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server import app_settings, running_app

KEY = "tp_test_key_0123456789"
CHROMIUM = Path("/usr/bin/chromium")
OFFLINE = {"kraken_ws_url": "ws://127.0.0.1:1/v2", "kraken_rest_url": "http://127.0.0.1:1"}

PAGE = """<!doctype html><html><body><script>
window.results = {};
const api = new URLSearchParams(location.search).get("api");
const key = new URLSearchParams(location.search).get("key");
fetch(api + "/api/v1/ltp", {headers: {"X-API-Key": key}})
  .then(r => r.json().then(body => { window.results.fetch = {status: r.status, body: body}; }))
  .catch(e => { window.results.fetch = {error: String(e)}; });
const source = new EventSource(api + "/api/v1/ltp/live?pair=BTC/USD&api_key=" + key);
source.onopen = () => { window.results.sse = {open: true}; source.close(); };
source.onerror = () => {
  if (!window.results.sse) window.results.sse = {error: true};
  source.close();
};
</script></body></html>"""


@contextlib.asynccontextmanager
async def page_server() -> AsyncIterator[str]:
    """A tiny HTTP server for the page, on its own loopback origin."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = PAGE.encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
@pytest.mark.parametrize("allowed", [True, False])
async def test_fetch_and_event_source_from_another_origin(allowed: bool) -> None:
    from playwright.async_api import async_playwright

    async with page_server() as origin:
        settings = app_settings(
            **OFFLINE,
            auth_enabled="true",
            auth_api_key=KEY,
            cors_origins=origin if allowed else "http://127.0.0.1:1",
        )
        async with running_app(settings) as app, async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = await browser.new_page()
                await page.goto(f"{origin}/?api={app.base_url}&key={KEY}")
                await page.wait_for_function(
                    "window.results.fetch && window.results.sse", timeout=15_000
                )
                results = json.loads(await page.evaluate("JSON.stringify(window.results)"))
            finally:
                await browser.close()
    if allowed:
        # Offline, the LTP answer is the Go service's 503; what matters is the page can read it.
        assert results["fetch"]["status"] in {200, 503}, results
        assert "ltp" in results["fetch"]["body"], results
        assert results["sse"] == {"open": True}, results
    else:
        assert "error" in results["fetch"], results
        assert results["sse"] == {"error": True}, results
