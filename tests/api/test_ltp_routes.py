"""The LTP routes through the ASGI app in process: request order, partial answers, errors."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.api.conftest import PAIRS
from tests.fakes.kraken_ws import recorded_ticker_values


async def test_every_pair_with_the_recorded_value(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ltp")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    entries = response.json()["ltp"]
    assert [entry["pair"] for entry in entries] == PAIRS
    recorded = recorded_ticker_values()
    for entry in entries:
        assert Decimal(str(entry["amount"])) == recorded[entry["pair"]]["last"]
        assert entry["source"] == "replay"
        assert entry["stale"] is False


async def test_pairs_come_back_in_request_order(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ltp", params={"pairs": "XRP/USD,BTC/USD"})

    assert response.status_code == 200
    assert [entry["pair"] for entry in response.json()["ltp"]] == ["XRP/USD", "BTC/USD"]


async def test_an_unsupported_pair_among_good_ones_is_a_206(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ltp", params={"pairs": "BTC/USD,DOGE/MOON"})

    assert response.status_code == 206
    body = response.json()
    assert [entry["pair"] for entry in body["ltp"]] == ["BTC/USD"]
    (error,) = body["errors"]
    assert error["code"] == "UNSUPPORTED_PAIR"


@pytest.mark.parametrize(
    ("query", "code"),
    [({"pair": "DOGE/MOON"}, "UNSUPPORTED_PAIR"), ({"max_age_ms": "soon"}, "INVALID_PARAMETER")],
)
async def test_bad_requests_get_the_flat_error(
    client: httpx.AsyncClient, query: dict[str, str], code: str
) -> None:
    response = await client.get("/api/v1/ltp", params=query)

    assert response.status_code == 400
    assert response.json()["error"] == code


async def test_the_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ltp", headers={"X-Request-ID": "trace-42"})

    assert response.headers["x-request-id"] == "trace-42"


async def test_cached_serves_what_the_service_wrote(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ltp/cached")

    assert response.status_code == 200
    assert sorted(entry["pair"] for entry in response.json()["ltp"]) == PAIRS
