"""One value, one age (SPEC §4.6): every endpoint reports the same ``age_ms``/``stale`` for the
same value at the same instant — the app on a real port, its clock injected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import FakeClock, wait_for
from tests.server import RunningApp, app_settings, running_app
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.settings import Settings

RECEIVED = datetime(2026, 2, 14, 10, 21, 7, 151_000, tzinfo=UTC)
DEADLINE = 10.0


@pytest.fixture
def settings(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, tmp_path: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            kraken_fallback_timeout="30s",  # nothing replaces the value under test
            rate_limit_enabled=False,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/history.db",
            **overrides,
        )

    return make


def inject(app: RunningApp, clock: FakeClock) -> None:
    """Every age the app reports is measured against ``clock``."""
    container = app.container
    container.prices.clock = clock
    container.tokens.clock = clock
    app.app.token_api.clock = clock


async def ltp_ages(http: httpx.AsyncClient, app: RunningApp) -> dict[str, tuple[int, bool]]:
    """``(age_ms, stale)`` of BTC/USD on ``/ltp`` and ``/ltp/cached``."""
    ages = {}
    for path in ("/api/v1/ltp?pair=BTC/USD", "/api/v1/ltp/cached"):
        response = await http.get(app.base_url + path)
        assert response.status_code == 200, response.text
        (entry,) = [e for e in response.json()["ltp"] if e["pair"] == "BTC/USD"]
        assert entry["amount"] == 70123.45
        ages[path] = (entry["age_ms"], entry["stale"])
    return ages


async def test_ltp_and_ltp_cached_report_one_age_for_one_value(
    settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    async with running_app(settings(stale_after="60s")) as app:
        prices = app.container.prices

        def streamed() -> bool:  # the WS snapshot is in: nothing else replaces the probe
            views = prices.views().values()
            return len(views) == 4 and all(v.ticker.source == "kraken_ws" for v in views)

        await wait_for(streamed, DEADLINE, message="every pair served by the WebSocket")
        ticker = Ticker(Pair("BTC", "USD"), Decimal("70123.45"), "probe", RECEIVED)
        assert await prices.accept(ticker)
        clock = FakeClock(RECEIVED.timestamp() + 1.234)
        inject(app, clock)
        ages = await ltp_ages(http, app)
        assert set(ages.values()) == {(1234, False)}
        # A heartbeat of the value's source confirms it is still current: both count from it.
        prices.confirm("probe", RECEIVED.timestamp() + 0.5)
        assert set((await ltp_ages(http, app)).values()) == {(734, False)}
        clock.advance(60)  # 60.734 s after the confirmation
        assert set((await ltp_ages(http, app)).values()) == {(60_734, True)}


async def test_every_token_endpoint_reports_one_age_for_one_value(
    settings: Callable[..., Settings], http: httpx.AsyncClient
) -> None:
    async with running_app(settings(stale_after="60s")) as app:
        quote = TokenQuote(
            source="probe",
            symbol="PRB",
            name="Probe",
            received_at=RECEIVED,
            price_usd=Decimal("1.25"),
            market_cap_usd=Decimal("125000000"),
            volume_24h_usd=Decimal("2500000"),
        )
        (snapshot,) = await app.container.tokens.accept([quote])
        clock = FakeClock(RECEIVED.timestamp() + 61.5)
        inject(app, clock)
        base = f"{app.base_url}/api/v1/tokens"
        answers = {
            "list": (await http.get(base)).json()["data"][0],
            "list basic": (await http.get(base + "?detail=basic")).json()["data"][0],
            "detail": (await http.get(f"{base}/{snapshot.id}")).json()["data"],
            "detail basic": (await http.get(f"{base}/{snapshot.id}?detail=basic")).json()["data"],
            "velocity": (await http.get(f"{base}/{snapshot.id}/velocity")).json()["data"],
        }
        assert {name: (a["age_ms"], a["stale"]) for name, a in answers.items()} == dict.fromkeys(
            answers, (61_500, True)
        )
        assert "stale" in answers["detail"]["quality"]["flags"]
