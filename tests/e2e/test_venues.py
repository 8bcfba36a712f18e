"""Three venues end to end: fake Kraken, Coinbase and Binance -> the app on a port.

The aggregate is checked against a hand-computed VWAP; a silent venue drops out as ``stale``
after STALE_AFTER, a venue 5 % off as ``outlier``; two venues apart are flagged
``sources_disagree``; the primary venue going down fails over per LTP_FALLBACK, and says so
in each value's ``source``, ``/api/v1/sources`` and ``/ready``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e._streams import streaming_app
from tests.fakes.binance import FakeBinanceRest, FakeBinanceWs, recorded_values
from tests.fakes.coinbase import FakeCoinbaseRest, FakeCoinbaseWs, recorded_tickers
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app

PAIRS = "BTC/USD,ETH/USD"


def coinbase_values() -> dict[str, dict[str, Any]]:
    """BTC-USD and ETH-USD, re-labelled from a recorded ticker frame (prices set by tests)."""
    template = next(iter(recorded_tickers().values()))
    return {
        "BTC-USD": {**template, "product_id": "BTC-USD", "price": "70010", "volume_24h": "30"},
        "ETH-USD": {**template, "product_id": "ETH-USD", "price": "2085", "volume_24h": "300"},
    }


@dataclass
class Venues:
    kraken_ws: FakeKrakenWs
    kraken_rest: FakeKrakenRest
    coinbase_ws: FakeCoinbaseWs
    coinbase_rest: FakeCoinbaseRest
    binance_ws: FakeBinanceWs
    binance_rest: FakeBinanceRest

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "sources": "kraken,coinbase,binance",
            "supported_pairs": PAIRS,
            "quote_equivalents": "USDT=USD",
            "rate_limit_enabled": False,
            "kraken_ws_url": self.kraken_ws.url,
            "kraken_rest_url": self.kraken_rest.base_url,
            "coinbase_ws_url": self.coinbase_ws.url,
            "coinbase_rest_url": self.coinbase_rest.base_url,
            "binance_ws_url": self.binance_ws.url,
            "binance_rest_url": self.binance_rest.base_url,
            **overrides,
        }

    async def trade(self, kraken: str, coinbase: str, binance: str) -> None:
        """One trade of BTC on each venue, with 24 h volumes 10, 30 and 60."""
        await self.kraken_ws.send_ticker("BTC/USD", last=kraken, volume="10")
        await self.coinbase_ws.send_ticker("BTC-USD", price=coinbase, volume_24h="30")
        await self.binance_ws.send_ticker("BTCUSDT", last=binance, volume="60")


@pytest.fixture
async def venues() -> AsyncIterator[Venues]:
    binance = recorded_values()
    binance["ETHUSDT"]["v"] = "600"
    async with AsyncExitStack() as stack:
        enter = stack.enter_async_context
        yield Venues(
            kraken_ws=await enter(FakeKrakenWs(heartbeat_interval=0.2)),
            kraken_rest=await enter(FakeKrakenRest()),
            coinbase_ws=await enter(FakeCoinbaseWs(coinbase_values(), heartbeat_interval=0.2)),
            coinbase_rest=await enter(FakeCoinbaseRest(coinbase_values())),
            binance_ws=await enter(FakeBinanceWs(binance, update_interval=0.2)),
            binance_rest=await enter(FakeBinanceRest(binance)),
        )


@asynccontextmanager
async def app_with(venues: Venues, **overrides: Any) -> AsyncIterator[RunningApp]:
    async with running_app(app_settings(**venues.settings(**overrides))) as app:
        yield app


async def aggregate(http: httpx.AsyncClient, app: RunningApp, pair: str = "BTC/USD") -> Any:
    response = await http.get(f"{app.base_url}/api/v1/ltp/aggregate", params={"pair": pair})
    assert response.status_code == 200, response.text
    [entry] = response.json()["data"]
    return entry


def by_venue(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {venue["venue"]: venue for venue in entry["venues"]}


async def test_aggregate_is_the_vwap_of_the_three_venues(
    venues: Venues, http: httpx.AsyncClient
) -> None:
    async with app_with(venues) as app:
        await venues.trade(kraken="70000", coinbase="70010", binance="70020")

        async def priced() -> bool:
            return (await aggregate(http, app))["price"] == 70015.0

        await wait_for(priced, 10, message="the aggregate of the three trades")
        entry = await aggregate(http, app)
        # (70000*10 + 70010*30 + 70020*60) / 100 = 70015
        assert entry["weighting"] == "volume"
        assert entry["volume_24h"] == 100.0
        assert entry["flags"] == []
        venue = by_venue(entry)
        assert {name: v["weight"] for name, v in venue.items()} == {
            "kraken": 0.1,
            "coinbase": 0.3,
            "binance": 0.6,
        }
        assert {name: v["symbol"] for name, v in venue.items()} == {
            "kraken": "BTC/USD",
            "coinbase": "BTC-USD",
            "binance": "BTCUSDT",
        }
        assert all(v["used"] and v["excluded"] is None for v in venue.values())

        base = f"{app.base_url}/api/v1/ltp?pair=BTC/USD"
        [served] = (await http.get(base)).json()["ltp"]
        assert served["source"] == "kraken_ws"  # LTP_PRIMARY=kraken
        assert served["amount"] == 70000.0
        [own] = (await http.get(base + "&source=coinbase")).json()["ltp"]
        assert own["source"] == "coinbase_ws"
        assert own["amount"] == 70010.0
        [agg] = (await http.get(base + "&source=aggregate")).json()["ltp"]
        assert agg["source"] == "aggregate"
        assert agg["amount"] == 70015.0
        assert agg["stale"] is False
        bad = await http.get(base + "&source=nosuch")
        assert bad.status_code == 400

        pairs = (await http.get(f"{app.base_url}/api/v1/pairs")).json()["data"]
        btc = next(p for p in pairs if p["pair"] == "BTC/USD")
        assert btc["venues"] == ["kraken", "coinbase", "binance"]
        assert btc["providers"]["binance"] == {"symbol": "BTCUSDT"}
        assert btc["aggregate"]["price"] == 70015.0


async def test_a_silent_venue_is_excluded_as_stale_after_stale_after(
    venues: Venues, http: httpx.AsyncClient
) -> None:
    async with app_with(venues, stale_after="1s") as app:
        await venues.trade(kraken="70000", coinbase="70010", binance="70020")
        await wait_for(
            lambda: _all_used(http, app), 10, message="every venue used before the silence"
        )
        venues.coinbase_rest.fail_with(503, times=None)  # the REST fallback is down too
        venues.coinbase_ws.refuse = True
        venues.coinbase_ws.silence()

        async def coinbase_stale() -> bool:
            return by_venue(await aggregate(http, app))["coinbase"]["excluded"] == "stale"

        await wait_for(coinbase_stale, 10, message="coinbase excluded as stale")
        entry = await aggregate(http, app)
        # (70000*10 + 70020*60) / 70
        assert entry["price"] == pytest.approx(70017.142857142857, rel=1e-12)
        assert by_venue(entry)["coinbase"]["stale"] is True
        assert by_venue(entry)["coinbase"]["age_ms"] > 1000


async def test_a_venue_five_percent_off_is_excluded_as_outlier(
    venues: Venues, http: httpx.AsyncClient
) -> None:
    async with app_with(venues) as app:
        await venues.trade(kraken="70000", coinbase="70010", binance="73500")

        async def binance_outlier() -> bool:
            return by_venue(await aggregate(http, app))["binance"]["excluded"] == "outlier"

        await wait_for(binance_outlier, 10, message="binance excluded as an outlier")
        entry = await aggregate(http, app)
        assert entry["price"] == 70007.5  # (70000*10 + 70010*30) / 40
        assert by_venue(entry)["binance"]["used"] is False
        assert entry["venues_used"] == 2


async def test_two_venues_that_disagree_are_flagged(
    venues: Venues, http: httpx.AsyncClient
) -> None:
    async with app_with(venues, sources="kraken,coinbase", venue_disagree_bps=50) as app:
        await venues.kraken_ws.send_ticker("BTC/USD", last="70000", volume="10")
        await venues.coinbase_ws.send_ticker("BTC-USD", price="70700", volume_24h="10")

        async def flagged() -> bool:
            return (await aggregate(http, app))["flags"] == ["sources_disagree"]

        await wait_for(flagged, 10, message="sources_disagree")
        entry = await aggregate(http, app)
        assert entry["price"] == 70350.0
        assert [v["venue"] for v in entry["venues"] if v["used"]] == ["kraken", "coinbase"]


@pytest.mark.parametrize(
    ("fallback", "served_by"), [("aggregate", "aggregate"), ("coinbase", "coinbase_ws")]
)
async def test_the_primary_going_down_fails_over_as_configured(
    venues: Venues, http: httpx.AsyncClient, fallback: str, served_by: str
) -> None:
    async with app_with(venues, stale_after="1s", ltp_fallback=fallback) as app:
        await venues.trade(kraken="70000", coinbase="70010", binance="70020")
        url = f"{app.base_url}/api/v1/ltp?pair=BTC/USD"

        async def served(source: str) -> bool:
            entries = (await http.get(url)).json().get("ltp") or [{}]
            return bool(entries[0].get("source") == source)

        await wait_for(lambda: served("kraken_ws"), 10, message="kraken serving first")
        venues.kraken_rest.fail_with(503, times=None)
        await venues.kraken_ws.stop()  # Kraken is down: no stream, no REST

        await wait_for(lambda: served(served_by), 15, message=f"failover to {served_by}")
        answer = await http.get(f"{app.base_url}/api/v1/sources")
        assert answer.status_code == 200, answer.text
        sources = answer.json()["data"]
        assignment = sources["pairs"]["BTC/USD"]
        assert assignment["source"] == (fallback if fallback == "aggregate" else "coinbase")
        assert assignment["reason"].startswith(f"failover (LTP_FALLBACK={fallback})")
        assert sources["ltp"]["primary"] == "kraken"
        ready = (await http.get(f"{app.base_url}/ready")).json()
        assert ready["services"]["pairs"]["BTC/USD"]["reason"].startswith("failover")

        venues.kraken_rest.reset()
        await venues.kraken_ws.start()  # Kraken is back (same port): the primary serves again
        await wait_for(lambda: served("kraken_ws"), 15, message="back to kraken")


async def _all_used(http: httpx.AsyncClient, app: RunningApp) -> bool:
    entry = await aggregate(http, app)
    return entry["venues_used"] == 3


async def test_the_aggregate_has_its_own_stream(venues: Venues) -> None:
    settings = app_settings(**venues.settings())
    async with streaming_app(settings) as app, httpx.AsyncClient(timeout=10) as client:
        await venues.trade(kraken="70000", coinbase="70010", binance="70020")
        url = f"{app.base_url}/api/v1/ltp/live"
        seen: list[dict[str, Any]] = []
        async with client.stream("GET", url, params={"pair": "btc-usd@aggregate"}) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line.removeprefix("data:")))
                    fields = [e.get("data") or e.get("changes") or {} for e in seen]
                    if any(f.get("amount") == 70015.0 for f in fields):  # snapshot or delta
                        break
        first = seen[0]
        assert first["type"] == "snapshot"
        assert first["id"] == "BTC/USD@aggregate"
        assert first["data"]["pair"] == "BTC/USD"
        assert first["data"]["source"] == "aggregate"
        bad = await client.get(url, params={"pair": "BTC/USD@best"})
        assert bad.status_code == 400


async def test_a_pair_some_venues_list_is_served_by_those(
    venues: Venues, http: httpx.AsyncClient
) -> None:
    # the bundled Coinbase list (2021-04-17) has no XRP-USD: Kraken and Binance serve XRP/USD
    async with app_with(venues, supported_pairs="BTC/USD,XRP/USD") as app:
        await venues.trade(kraken="70000", coinbase="70010", binance="70020")

        async def xrp_priced() -> bool:
            return (await aggregate(http, app, "XRP/USD"))["price"] is not None

        await wait_for(xrp_priced, 10, message="an XRP/USD aggregate from Kraken")
        pairs = (await http.get(f"{app.base_url}/api/v1/pairs")).json()["data"]
        xrp = next(p for p in pairs if p["pair"] == "XRP/USD")
        assert xrp["venues"] == ["kraken", "binance"]
        assert "coinbase" not in xrp["providers"]
        coinbase = by_venue(xrp["aggregate"])["coinbase"]
        assert coinbase["symbol"] is None
        assert coinbase["excluded"] == "missing"
        answer = await http.get(f"{app.base_url}/api/v1/ltp?pair=XRP/USD&source=coinbase")
        assert answer.status_code == 503
        assert answer.json()["errors"][0]["message"] == "coinbase does not list XRP/USD"
