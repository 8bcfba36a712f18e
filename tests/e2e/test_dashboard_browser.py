"""The dashboard at ``/`` in headless Chromium, on the replay source with a Kraken that is down.

The token table fills from the live stream within 5 s, prices change in place, the dead
Kraken shows as a source that needs attention, and the page logs no error. A screenshot is
kept under pytest's tmp path (its path printed). With auth on, the page asks for a key, keeps
it for the tab and streams with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.conftest import LiveApp
from tests.fakes._loopback import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "tp_dashboard_key_0123456789"
FILL_DEADLINE_MS = 5_000
DEADLINE_MS = 30_000  # generous: a loaded CI machine answers slowly, the test still ends

# Playwright evaluates a bare expression with eval(), which the page's CSP forbids: every
# predicate below is an arrow function.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


def replay_with_dead_kraken(tmp: Path, **overrides: Any) -> Any:
    """Replay prices and tokens; Kraken enabled too, but nothing listens where it points."""
    dead = free_port()

    def build(_: dict[str, str]) -> dict[str, Any]:
        return {
            "sources": "replay,kraken",
            "kraken_ws_url": f"ws://127.0.0.1:{dead}",
            "kraken_rest_url": f"http://127.0.0.1:{dead}",
            "replay_speed": 600,
            "database_url": f"sqlite+aiosqlite:///{tmp}/history.db",
            **overrides,
        }

    return build


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with LiveApp(replay_with_dead_kraken(tmp_path_factory.mktemp("dashboard"))) as app:
        yield app


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    tmp = tmp_path_factory.mktemp("dashboard-auth")
    settings = replay_with_dead_kraken(tmp, auth_enabled=True, auth_api_key=KEY)
    with LiveApp(settings) as app:
        yield app


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page: Any) -> list[str]:
    """Console errors and uncaught exceptions of ``page``, as they happen."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


def row_count(page: Any) -> int:
    return int(page.locator("#token-rows tr").count())


def test_root_serves_the_page_with_a_strict_csp_and_stays_out_of_openapi(open_app: LiveApp) -> None:
    page = httpx.get(f"{open_app.base_url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text, "no inline script"
    assert 'data-auth="false"' in page.text
    asset = httpx.get(f"{open_app.base_url}/dashboard/app.js", timeout=10)
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
    paths = httpx.get(f"{open_app.base_url}/openapi.json", timeout=10).json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/dashboard") for path in paths)


def test_the_dashboard_fills_streams_and_shows_a_down_source(
    open_app: LiveApp, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = watch_errors(page)
    page.goto(f"{open_app.base_url}/")

    # The table fills from the token stream within 5 s of opening the page.
    page.wait_for_function(
        "() => document.querySelectorAll('#token-rows tr').length >= 10", timeout=FILL_DEADLINE_MS
    )
    bitcoin = page.locator('#token-rows tr[data-id="bitcoin"]')
    assert bitcoin.locator("td.price").inner_text().startswith("$")
    assert "BTC" in bitcoin.inner_text()

    # A price cell changes in place as deltas arrive (the replay moves every second).
    first = bitcoin.locator("td.price").inner_text()
    page.wait_for_function(
        "([first]) => document.querySelector('#token-rows tr[data-id=\"bitcoin\"] td.price')"
        ".textContent !== first",
        arg=[first],
        timeout=DEADLINE_MS,
    )
    # The LTP ticker has a card per supported pair, priced from the stream.
    for pair in ("BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"):
        card = page.locator(f'.pair[data-pair="{pair}"] .price')
        page.wait_for_function(
            '([pair]) => document.querySelector(`.pair[data-pair="${pair}"] .price`)'
            "?.textContent.startsWith('$')",
            arg=[pair],
            timeout=DEADLINE_MS,
        )
        assert card.inner_text().startswith("$")

    # Kraken is down: its source shows it; replay is healthy.
    kraken = page.locator('.source[data-source="kraken_ws"]')
    kraken.wait_for(timeout=DEADLINE_MS)
    assert kraken.get_attribute("data-health") == "down"
    assert page.locator('.source[data-source="replay"]').get_attribute("data-health") == "ok"
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state === 'live'", timeout=DEADLINE_MS
    )

    # Trend arrows and sparklines load for the rows on screen.
    page.wait_for_function(
        "() => document.querySelector('#token-rows tr[data-id=\"bitcoin\"] svg.spark') !== null",
        timeout=DEADLINE_MS,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#token-rows tr[data-id=\"bitcoin\"] .trends span')]"
        ".some((s) => s.title.includes('velocity'))",
        timeout=DEADLINE_MS,
    )

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=False)
    print(f"dashboard screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert errors == []


def test_sorting_and_filtering(open_app: LiveApp, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = watch_errors(page)
    page.goto(f"{open_app.base_url}/")
    page.wait_for_function(
        "() => document.querySelectorAll('#token-rows tr').length >= 10", timeout=FILL_DEADLINE_MS
    )

    def visible_ids() -> list[str]:
        ids: list[str] = page.eval_on_selector_all(
            "#token-rows tr:not([hidden])", "rows => rows.map(r => r.dataset.id)"
        )
        return ids

    page.locator('th[data-sort="market_cap_usd"]').click()
    assert page.locator('th[data-sort="market_cap_usd"]').get_attribute("aria-sort") == (
        "descending"
    )
    caps = page.eval_on_selector_all(
        "#token-rows tr:not([hidden])",
        "rows => rows.map(r => r.dataset.id)",
    )
    assert caps[0] == "bitcoin"
    page.locator('th[data-sort="market_cap_usd"]').click()
    assert page.locator('th[data-sort="market_cap_usd"]').get_attribute("aria-sort") == (
        "ascending"
    )
    assert visible_ids()[-1] == "bitcoin"

    page.locator("#filter").fill("eth")
    page.wait_for_function(
        "() => document.querySelectorAll('#token-rows tr:not([hidden])').length < 10",
        timeout=DEADLINE_MS,
    )
    shown = visible_ids()
    assert "ethereum" in shown
    assert "bitcoin" not in shown
    assert "of" in page.locator("#tokens-count").inner_text()
    assert errors == []


def test_with_auth_on_the_page_asks_for_a_key_and_keeps_it_for_the_tab(
    auth_app: LiveApp, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    crashes: list[str] = []
    page.on("pageerror", lambda e: crashes.append(str(e)))
    page.goto(f"{auth_app.base_url}/")
    dialog = page.locator("dialog#auth")
    dialog.wait_for(state="visible", timeout=DEADLINE_MS)
    assert row_count(page) == 0

    page.locator("#auth-key").fill("wrong-key")
    page.locator("#auth-submit").click()
    page.wait_for_function(
        "() => document.getElementById('auth-error').textContent.includes('refused')",
        timeout=DEADLINE_MS,
    )

    page.locator("#auth-key").fill(KEY)
    page.locator("#auth-submit").click()
    dialog.wait_for(state="hidden", timeout=DEADLINE_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('#token-rows tr').length >= 10", timeout=DEADLINE_MS
    )
    assert page.evaluate("sessionStorage.getItem('tokenpulse.apiKey')") == KEY

    # A reload in the same tab streams again without asking.
    page.reload()
    page.wait_for_function(
        "() => document.querySelectorAll('#token-rows tr').length >= 10", timeout=DEADLINE_MS
    )
    assert not dialog.is_visible()
    assert crashes == []


PURE_FUNCTIONS = """async () => {
  const { aggregateOf } = await import("/dashboard/ticker.js");
  const { healthOf } = await import("/dashboard/sources.js");
  const fmt = await import("/dashboard/format.js");
  const now = new Date().toISOString();
  return {
    none: aggregateOf({ pair: "BTC/USD", aggregate: null }),
    listed: aggregateOf({ pair: "BTC/USD", aggregate: { price: 100.5, venues: [
      { venue: "kraken", price: 100, weight: 0.6, used: true },
      { venue: "binance", price: 140, weight: 0, used: false, reason: "outlier" },
    ] } }),
    keyed: aggregateOf({ pair: "BTC/USD", aggregate: { amount: "101",
      venues: { coinbase: { amount: 101, excluded: true, reason: "stale" } } } }),
    health: [
      healthOf({ connected: true, last_message_age_ms: 10 }, 60000),
      healthOf({ connected: true, last_message_age_ms: 90000 }, 60000),
      healthOf({ connected: false, state: "reconnecting" }, 60000),
      healthOf({ connected: false, state: "idle", last_error_at: null }, 60000),
      healthOf({ connected: false, state: "idle", last_error_at: now }, 60000),
    ],
    formats: [fmt.price(68923.4), fmt.price(0.3927017597), fmt.usd(326635737516), fmt.age(754000),
              fmt.percent(-1.0295), fmt.velocity(0.0710394318465), fmt.price(null)],
  };
}"""


def test_pairs_and_sources_are_read_generically(open_app: LiveApp, browser: Any) -> None:
    """The page renders whatever /api/v1/pairs reports per venue and for the aggregate."""
    page = browser.new_page()
    page.goto(f"{open_app.base_url}/")
    result = page.evaluate(PURE_FUNCTIONS)
    assert result["none"] is None
    assert result["listed"] == {
        "price": 100.5,
        "venues": [
            {"name": "kraken", "price": 100, "weight": 0.6, "used": True, "reason": None},
            {"name": "binance", "price": 140, "weight": 0, "used": False, "reason": "outlier"},
        ],
    }
    assert result["keyed"] == {
        "price": 101,
        "venues": [
            {"name": "coinbase", "price": 101, "weight": None, "used": False, "reason": "stale"}
        ],
    }
    assert result["health"] == ["ok", "stale", "down", "idle", "down"]
    assert result["formats"] == [
        "$68,923.40",
        "$0.3927",
        "$326.64B",
        "12 m 34 s",
        "-1.03%",
        "0.07104",
        "—",
    ]
