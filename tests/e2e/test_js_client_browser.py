"""The JavaScript client (``clients/js``) in headless Chromium against the real service.

A page of the service (``/health``: a document from a loopback server, as Chromium's local
network access checks want for a WebSocket to loopback) imports the package's ES modules as
they are in the repository (no build step; Playwright serves ``clients/js/src`` under
``/__client__/`` of the same origin), makes REST calls and streams prices over SSE and, with
socket.io-client's browser build from ``clients/js/node_modules`` (``npm install`` in
``clients/js``), over Socket.IO.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import LiveApp

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js"
SOCKET_IO = PACKAGE / "node_modules" / "socket.io-client" / "dist" / "socket.io.esm.min.js"
DEADLINE_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)

REST_AND_SSE = """async () => {
  const { TokenpulseClient, NotFound } = await import("/__client__/index.js");
  const client = new TokenpulseClient(); // the page's origin
  const ltp = await client.ltp(["btc-usd"]);
  const page = await client.tokens({ limit: 3, sort: "market_cap", order: "desc" });
  let notFound = null;
  try {
    await client.token("no-such-token");
  } catch (error) {
    notFound = error instanceof NotFound ? error.code : String(error);
  }
  const updates = [];
  const stream = client.stream({ pairs: ["BTC/USD"], minIntervalMs: 50 });
  setTimeout(() => stream.close(), 15000); // a failure ends the loop instead of hanging
  for await (const update of stream) {
    const { type, id, seq, state } = update;
    updates.push({ type, id, seq, amount: state.amount });
    if (updates.length >= 3) break;
  }
  return { pair: ltp.prices[0].pair, amount: ltp.prices[0].amount, tokens: page.tokens.length,
           notFound, updates };
}"""

SOCKET_IO_STREAM = """async () => {
  const { TokenpulseClient } = await import("/__client__/index.js");
  const { io } = await import("/__client__/socket.io.esm.min.js");
  const stream = new TokenpulseClient().stream({ transport: "socketio", io, pairs: ["ETH/USD"] });
  const updates = [];
  setTimeout(() => stream.close(), 15000);
  for await (const update of stream) {
    updates.push({ type: update.type, id: update.id, amount: update.state.amount });
    if (updates.length >= 2) break;
  }
  return { updates, status: stream.status };
}"""


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    tmp = tmp_path_factory.mktemp("js-client")

    def settings(_: dict[str, str]) -> dict[str, Any]:
        return {
            "sources": "replay",
            "replay_speed": 36000,  # hourly frames: about 10 updates a second
            "rate_limit_enabled": False,
            "database_url": f"sqlite+aiosqlite:///{tmp}/history.db",
        }

    with LiveApp(settings) as app:
        yield app


@pytest.fixture
def page(live_app: LiveApp) -> Iterator[Any]:
    """A page on the service's origin that can import the client's modules."""
    from playwright.sync_api import Route, sync_playwright

    def serve(route: Route) -> None:
        name = route.request.url.rsplit("/__client__/", 1)[1]
        path = SOCKET_IO if name == SOCKET_IO.name else PACKAGE / "src" / name
        if "/" in name or not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, content_type="text/javascript", body=path.read_text())

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(DEADLINE_MS)
            page.route(f"{live_app.base_url}/__client__/**", serve)
            page.goto(f"{live_app.base_url}/health")
            yield page
        finally:
            browser.close()


def test_rest_calls_and_an_sse_price_stream_in_the_browser(page: Any) -> None:
    crashes: list[str] = []
    page.on("pageerror", lambda e: crashes.append(str(e)))
    result = page.evaluate(REST_AND_SSE)
    assert result["pair"] == "BTC/USD"
    assert result["amount"] > 0
    assert result["tokens"] == 3
    assert result["notFound"] == "TOKEN_NOT_FOUND"
    updates = result["updates"]
    assert [u["id"] for u in updates] == ["BTC/USD"] * 3
    assert updates[0]["type"] == "snapshot"
    assert all(u["type"] == "delta" for u in updates[1:])
    assert [u["seq"] for u in updates] == sorted({u["seq"] for u in updates})
    assert all(u["amount"] > 0 for u in updates), "each delta carries the merged state"
    assert crashes == []


@pytest.mark.skipif(
    not SOCKET_IO.exists(), reason="run `npm install` in clients/js for socket.io-client"
)
def test_a_socketio_price_stream_in_the_browser(page: Any) -> None:
    result = page.evaluate(SOCKET_IO_STREAM)
    assert [u["id"] for u in result["updates"]] == ["ETH/USD", "ETH/USD"]
    assert result["updates"][0]["type"] == "snapshot"
    assert result["status"] == "closed"
