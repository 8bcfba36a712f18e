"""`SOURCES=replay` as a real process shows three venues and their aggregate (issue 12): the
Kraken-shaped primary, Coinbase and Binance, each from the bundled frames of one period."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e._replay import replay_service, wait_for_sync

VENUES = {"kraken": "replay", "coinbase": "coinbase_replay", "binance": "binance_replay"}


def _aggregate(base_url: str, pair: str = "BTC/USD") -> dict[str, Any] | None:
    answer = httpx.get(f"{base_url}/api/v1/ltp/aggregate", params={"pair": pair}, timeout=5)
    assert answer.status_code == 200, answer.text
    entry: dict[str, Any] = answer.json()["data"][0]
    return entry if entry["venues_used"] == 3 else None


def test_replay_start_shows_three_venues_and_their_aggregate(tmp_path: Path) -> None:
    with replay_service(tmp_path) as service:
        found: list[dict[str, Any]] = []

        def three_used() -> bool:
            entry = _aggregate(service.base_url)
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


def test_replayed_venues_stay_current_between_their_frames(tmp_path: Path) -> None:
    """ETH/USD has a frame a recorded day apart (24 min at 60x): the replay's heartbeats keep
    every venue's value current past STALE_AFTER, as a live socket's do."""
    with replay_service(tmp_path, STALE_AFTER="2s") as service:
        wait_for_sync(
            lambda: _aggregate(service.base_url, "ETH/USD") is not None,
            30,
            message="three venues used in the ETH/USD aggregate",
        )

        def eth_value_older_than_stale_after() -> bool:
            ltp = httpx.get(
                f"{service.base_url}/api/v1/ltp", params={"pair": "ETH/USD"}, timeout=5
            ).json()["ltp"][0]
            received = datetime.fromisoformat(ltp["received_at"].replace("Z", "+00:00"))
            return (datetime.now(UTC) - received).total_seconds() > 3

        wait_for_sync(eth_value_older_than_stale_after, 15, message="ETH/USD's value aged 3 s")
        entry = _aggregate(service.base_url, "ETH/USD")
        assert entry is not None, "a venue went stale between recorded frames"
        assert all(not v["stale"] for v in entry["venues"])
