"""`SOURCES=replay` as a real process shows three venues and their aggregate (issue 12): the
Kraken-shaped primary, Coinbase and Binance, each from the bundled frames of one period."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e._replay import replay_service, wait_for_sync

VENUES = {"kraken": "replay", "coinbase": "coinbase_replay", "binance": "binance_replay"}


def _btc_aggregate(base_url: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{base_url}/api/v1/ltp/aggregate", params={"pair": "BTC/USD"}, timeout=5)
    assert answer.status_code == 200, answer.text
    entry: dict[str, Any] = answer.json()["data"][0]
    return entry if entry["venues_used"] == 3 else None


def test_replay_start_shows_three_venues_and_their_aggregate(tmp_path: Path) -> None:
    with replay_service(tmp_path) as service:
        found: list[dict[str, Any]] = []

        def three_used() -> bool:
            entry = _btc_aggregate(service.base_url)
            if entry is not None:
                found.append(entry)
            return entry is not None

        wait_for_sync(three_used, 30, message="three venues used in the BTC/USD aggregate")
        aggregate = found[-1]
        assert {v["venue"]: v["source"] for v in aggregate["venues"]} == VENUES
        assert all(v["used"] and not v["stale"] for v in aggregate["venues"])
        weights = [Decimal(str(v["weight"])) for v in aggregate["venues"]]
        assert abs(sum(weights, Decimal(0)) - 1) < Decimal("1e-9")
        price = Decimal(str(aggregate["price"]))
        for venue in aggregate["venues"]:
            assert abs(price / Decimal(str(venue["price"])) - 1) < Decimal("0.005"), venue

        pairs = httpx.get(f"{service.base_url}/api/v1/pairs", timeout=5).json()["data"]
        btc = next(p for p in pairs if p["pair"] == "BTC/USD")
        assert btc["venues"] == ["kraken", "coinbase", "binance"]
        assert btc["serving_source"] == "replay"
        xrp = next(p for p in pairs if p["pair"] == "XRP/USD")
        assert xrp["venues"] == ["kraken", "binance"]  # no XRP-USD in the recorded products

        # /api/v1/ltp's default answer is still the Kraken-shaped replay's own values.
        ltp = httpx.get(f"{service.base_url}/api/v1/ltp", timeout=5).json()["ltp"]
        assert {entry["source"] for entry in ltp} == {"replay"}
        sources = httpx.get(f"{service.base_url}/api/v1/sources", timeout=5).json()["data"]
        roles = {s["name"]: s["role"] for s in sources["sources"]}
        assert roles["coinbase_replay"] == roles["binance_replay"] == "venue"
        assert roles["replay"] == "primary"
