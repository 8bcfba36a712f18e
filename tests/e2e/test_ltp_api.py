"""The LTP API of the Go "BTC LTP Service", end to end: fake Kraken -> sources -> app on a port."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app


def kraken(ws: FakeKrakenWs, rest: FakeKrakenRest, **overrides: Any) -> dict[str, Any]:
    return {"kraken_ws_url": ws.url, "kraken_rest_url": rest.base_url, **overrides}


async def ltp(http: httpx.AsyncClient, app: RunningApp, query: str = "") -> httpx.Response:
    return await http.get(f"{app.base_url}/api/v1/ltp{query}")


async def wait_all_served(http: httpx.AsyncClient, app: RunningApp) -> None:
    async def all_ok() -> bool:
        return (await ltp(http, app)).status_code == 200

    await wait_for(all_ok, 10, message="every supported pair to have a price")


async def amount_of(http: httpx.AsyncClient, app: RunningApp, pair: str) -> dict[str, Any]:
    response = await ltp(http, app, f"?pair={pair}")
    entries: list[dict[str, Any]] = response.json()["ltp"]
    return entries[0] if entries else {}


async def test_ltp_equals_the_last_trade_sent(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        for price in ("70001.1", "70002.25", "69999.9"):
            await kraken_ws.send_ticker("BTC/USD", last=Decimal(price))

        async def last_is_sent() -> bool:
            return (await amount_of(http, app, "BTC/USD")).get("amount") == 69999.9

        await wait_for(last_is_sent, 5, message="the API to serve the last trade sent")
        response = await ltp(http, app, "?pair=BTC/USD")
        assert response.status_code == 200
        (entry,) = response.json()["ltp"]
        assert entry["pair"] == "BTC/USD"
        assert entry["source"] == "kraken_ws"
        assert entry["stale"] is False
        assert isinstance(entry["age_ms"], int)
        assert entry["timestamp"].endswith("Z")
        # The exact digits reach the wire: no float formatting noise.
        assert b'"amount":69999.9,' in response.content


async def test_all_pairs_in_request_order_with_any_spelling(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        body = (await ltp(http, app)).json()
        assert [e["pair"] for e in body["ltp"]] == ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]
        body = (await ltp(http, app, "?pair=xrpusd,XXBTZUSD,eth-usd")).json()
        assert [e["pair"] for e in body["ltp"]] == ["XRP/USD", "BTC/USD", "ETH/USD"]
        body = (await ltp(http, app, "?pairs=LTC/USD&pairs=BTC/USD")).json()
        assert [e["pair"] for e in body["ltp"]] == ["LTC/USD", "BTC/USD"]
        assert (await ltp(http, app, "?pair=")).status_code == 200


async def test_206_when_some_pairs_are_unsupported(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        response = await ltp(http, app, "?pair=BTC/USD,DOGE/MOON,ADA/EUR")
        assert response.status_code == 206
        body = response.json()
        assert [e["pair"] for e in body["ltp"]] == ["BTC/USD"]
        errors = {e["pair"]: e for e in body["errors"]}
        assert errors["DOGE/MOON"]["code"] == "UNSUPPORTED_PAIR"
        assert errors["ADA/EUR"]["code"] == "UNSUPPORTED_PAIR"  # known to Kraken, not configured
        assert set(errors["DOGE/MOON"]) >= {"pair", "error", "code", "message"}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?pair=DOGE/MOON", "UNSUPPORTED_PAIR"),
        ("?pair=ADA/EUR,FOO/BAR", "UNSUPPORTED_PAIR"),
        ("?pair=BTC$USD", "INVALID_PARAMETER"),
        ("?pair=,,", "INVALID_PARAMETER"),
        ("?pair=BTC/USD&max_age_ms=soon", "INVALID_PARAMETER"),
    ],
)
async def test_400_when_no_requested_pair_is_valid(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    query: str,
    code: str,
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        response = await ltp(http, app, query)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == code
        assert body["message"]


async def test_206_and_503_when_pairs_have_no_price(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    # ADA/USD: the fake WS rejects the symbol and the REST fake always fails.
    kraken_ws.values.pop("ADA/USD", None)
    kraken_rest.fail_with(500, times=None)
    settings = app_settings(**kraken(kraken_ws, kraken_rest), supported_pairs="BTC/USD,ADA/USD")
    async with running_app(settings) as app:

        async def btc_served() -> bool:
            return (await ltp(http, app, "?pair=BTC/USD")).status_code == 200

        await wait_for(btc_served, 10, message="BTC/USD to be served")
        response = await ltp(http, app, "?pair=BTC/USD,ADA/USD")
        assert response.status_code == 206
        assert response.json()["errors"][0]["code"] == "PRICE_FETCH_ERROR"

        response = await ltp(http, app, "?pair=ADA/USD")
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "ALL_PRICES_FAILED"
        assert body["ltp"] == []
        # One failing pair never affects the others.
        assert (await ltp(http, app, "?pair=BTC/USD")).status_code == 200


async def test_ws_dropped_falls_back_to_rest_within_the_fallback_timeout(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        kraken_rest.set_last("XXBTZUSD", "71234.50000")
        await kraken_ws.stop()  # the exchange's socket is gone and refuses reconnects

        async def served_by_rest() -> bool:
            entry = await amount_of(http, app, "BTC/USD")
            return entry.get("source") == "kraken_rest" and entry.get("amount") == 71234.5

        # KRAKEN_FALLBACK_TIMEOUT=1s, REST poll 0.5s: well within 5 s.
        await wait_for(served_by_rest, 5, message="REST to take over BTC/USD")
        sources = (await http.get(f"{app.base_url}/api/v1/sources")).json()["data"]
        assert sources["pairs"]["BTC/USD"]["source"] == "kraken_rest"
        assert "fallback" in sources["pairs"]["BTC/USD"]["reason"]
        ws_state = next(s for s in sources["sources"] if s["name"] == "kraken_ws")
        assert ws_state["connected"] is False

        # The socket comes back: the WS takes over again.
        await kraken_ws.start()
        await kraken_ws.send_ticker("BTC/USD", last=Decimal("71300.1"))

        async def served_by_ws() -> bool:
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("71300.1"))
            return (await amount_of(http, app, "BTC/USD")).get("source") == "kraken_ws"

        await wait_for(served_by_ws, 10, message="the WS to serve BTC/USD again")


async def test_rest_5xx_keeps_last_value_flagged_stale_and_never_crashes(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    settings = app_settings(**kraken(kraken_ws, kraken_rest), stale_after="500ms")
    async with running_app(settings) as app:
        await wait_all_served(http, app)
        kraken_rest.fail_with(503, times=None)
        await kraken_ws.stop()

        async def stale() -> bool:
            return (await amount_of(http, app, "BTC/USD")).get("stale") is True

        await wait_for(stale, 5, message="BTC/USD to be flagged stale")
        response = await ltp(http, app, "?pair=BTC/USD")
        assert response.status_code == 200  # a value is served until a newer one replaces it
        assert response.json()["ltp"][0]["age_ms"] > 500

        async def rest_retried() -> bool:
            return len(kraken_rest.requests) >= 3

        await wait_for(rest_retried, 5, message="the REST fallback to keep retrying")
        # max_age_ms turns an old value into 503 STALE_DATA with Retry-After.
        response = await ltp(http, app, "?pair=BTC/USD&max_age_ms=100")
        assert response.status_code == 503
        assert response.json()["error"] == "STALE_DATA"
        assert int(response.headers["retry-after"]) >= 1
        metrics = (await http.get(f"{app.base_url}/metrics")).text
        assert (
            'tokenpulse_source_requests_total{outcome="http_error",source="kraken_rest"}' in metrics
        )


async def test_refresh_fetches_from_rest(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        kraken_rest.set_last("XETHZUSD", "2000.01000")
        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh?pairs=ETH/USD,BTC/USD")
        assert response.status_code == 200
        assert response.json() == {
            "message": "Prices refreshed successfully",
            "pairs": ["ETH/USD", "BTC/USD"],
        }
        assert (await amount_of(http, app, "ETH/USD"))["amount"] == 2000.01

        kraken_rest.fail_with(500, times=None)
        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh?pairs=BTC/USD")
        assert response.status_code == 502
        body = response.json()
        assert body["error"] == "PRICE_FETCH_ERROR"
        assert body["pairs"] == ["BTC/USD"]

        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh?pairs=DOGE/MOON")
        assert response.status_code == 400
        assert response.json()["error"] == "UNSUPPORTED_PAIR"

        # One bad pair beside good ones: a client error, and nothing is refreshed.
        before = len(kraken_rest.requests)
        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh?pairs=BTC/USD,]")
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "INVALID_PARAMETER"
        assert [e["pair"] for e in body["errors"]] == ["]"]
        assert len(kraken_rest.requests) == before


async def test_cached_returns_what_the_cache_holds(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        await wait_all_served(http, app)
        response = await http.get(f"{app.base_url}/api/v1/ltp/cached")
        assert response.status_code == 200
        pairs = sorted(e["pair"] for e in response.json()["ltp"])
        assert pairs == ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]
        assert all("age_ms" in e and "stale" in e for e in response.json()["ltp"])


async def test_health_ready_metrics_docs_and_request_id(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    async with running_app(app_settings(**kraken(kraken_ws, kraken_rest))) as app:
        health = await http.get(f"{app.base_url}/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        assert health.json()["services"] == {"service": "running"}

        await wait_all_served(http, app)
        ready = await http.get(f"{app.base_url}/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert ready.json()["services"]["cache"] == "ready"
        assert "kraken_ws" in ready.json()["services"]["sources"]

        response = await http.get(f"{app.base_url}/api/v1/ltp", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"
        generated = (await http.get(f"{app.base_url}/api/v1/pairs")).headers["x-request-id"]
        assert len(generated) == 24

        metrics = (await http.get(f"{app.base_url}/metrics")).text
        for name in (
            'tokenpulse_http_requests_total{method="GET",route="/api/v1/ltp",status="200"}',
            'tokenpulse_http_requests_total{method="GET",route="/api/v1/pairs",status="200"}',
            'tokenpulse_price{pair="BTC/USD"}',
            'tokenpulse_price_age_seconds{pair="BTC/USD"}',
            'tokenpulse_source_connected{source="kraken_ws"} 1.0',
            "tokenpulse_source_messages_total{kind=",
            "tokenpulse_build_info{",
            'tokenpulse_cache_operations_total{backend="memory"',
            'tokenpulse_rate_limit_decisions_total{decision="allowed"}',
        ):
            assert name in metrics, name
        assert (
            len(
                {
                    line.split("{")[0].split(" ")[0]
                    for line in metrics.splitlines()
                    if line.startswith("tokenpulse_")
                }
            )
            >= 30
        )

        spec = (await http.get(f"{app.base_url}/openapi.json")).json()
        ltp_get = spec["paths"]["/api/v1/ltp"]["get"]
        assert {"200", "206", "400", "503"} <= set(ltp_get["responses"])
        assert "example" in ltp_get["responses"]["206"]["content"]["application/json"]
        assert "/api/v1/ltp/refresh" in spec["paths"]
        assert (await http.get(f"{app.base_url}/docs")).status_code == 200

        pairs = (await http.get(f"{app.base_url}/api/v1/pairs")).json()
        btc = next(p for p in pairs["data"] if p["pair"] == "BTC/USD")
        assert btc["providers"]["kraken"]["rest"] == "XXBTZUSD"
        assert pairs["status"] == "success"

        missing = await http.get(f"{app.base_url}/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
        assert 'route="unmatched"' in (await http.get(f"{app.base_url}/metrics")).text


async def test_ready_is_503_before_any_price(
    http: httpx.AsyncClient, kraken_rest: FakeKrakenRest
) -> None:
    kraken_rest.fail_with(500, times=None)
    settings = app_settings(
        kraken_ws_url="ws://127.0.0.1:1/v2", kraken_rest_url=kraken_rest.base_url
    )
    async with running_app(settings) as app:
        ready = await http.get(f"{app.base_url}/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unhealthy"
        assert any("no price" in e for e in ready.json()["errors"])
        assert (await http.get(f"{app.base_url}/health")).status_code == 200
        assert orjson.loads((await ltp(http, app)).content)["error"] == "ALL_PRICES_FAILED"
