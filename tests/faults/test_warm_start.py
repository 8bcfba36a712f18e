"""Warm start (SPEC §10): an api instance started after the leader has run answers its first
request with the leader's values, with their true age, before any bus message arrives."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults._clients import instance_settings
from tests.helpers import wait_for
from tests.server import running_app

DEADLINE = 15.0


async def test_an_api_instance_started_later_serves_the_leaders_values_at_once(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    coingecko: FakeCoinGecko,
    http: httpx.AsyncClient,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    common = {"sources": "kraken,coingecko", "coingecko_base_url": coingecko.base_url}
    leader_settings = instance_settings(
        kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="ingest", **common
    )
    api_settings = instance_settings(
        kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="api", **common
    )
    admin = aioredis.Redis.from_url(redis_url)
    try:
        async with running_app(leader_settings) as leader:
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("74321.5"))

            async def saved() -> bool:
                ltp = await admin.hget(f"{redis_prefix}latest:ltp", "BTC/USD")
                tokens = await admin.hlen(f"{redis_prefix}latest:tokens")
                return ltp is not None and b"74321.5" in ltp and tokens > 0

            await wait_for(saved, DEADLINE, message="the leader to save its latest values")
            leader_token = (await http.get(f"{leader.base_url}/api/v1/tokens/bitcoin")).json()
            # No new tick from now on: the api instance can only have it from the hash.
            async with running_app(api_settings) as api:
                ltp = await http.get(f"{api.base_url}/api/v1/ltp?pair=BTC/USD")
                token = await http.get(f"{api.base_url}/api/v1/tokens/bitcoin")
                leader_ltp = await http.get(f"{leader.base_url}/api/v1/ltp?pair=BTC/USD")
    finally:
        await admin.aclose()
    assert ltp.status_code == 200
    (entry,) = ltp.json()["ltp"]
    assert entry["amount"] == 74321.5
    (leader_entry,) = leader_ltp.json()["ltp"]
    assert entry["timestamp"] == leader_entry["timestamp"]  # the leader's value, not a copy
    assert entry["age_ms"] > 0  # its true age, not "just received"
    assert token.status_code == 200
    assert token.json()["data"]["price_usd"] == leader_token["data"]["price_usd"]
    print(
        f"\nFIGURE warm start: first api request 200 with the leader's value "
        f"(age {entry['age_ms']} ms)"
    )
