"""CACHE_BACKEND=redis against the real Redis, and what happens when Redis is down (§13)."""

from __future__ import annotations

import httpx
import redis.asyncio as redis

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import app_settings, running_app


async def test_latest_values_live_in_redis_and_limits_are_shared(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = app_settings(
        kraken_ws_url=kraken_ws.url,
        kraken_rest_url=kraken_rest.base_url,
        cache_backend="redis",
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        rate_limit_capacity=1000,
    )
    async with running_app(settings) as app:

        async def cached_all() -> bool:
            response = await http.get(f"{app.base_url}/api/v1/ltp/cached")
            return response.status_code == 200 and len(response.json()["ltp"]) == 4

        await wait_for(cached_all, 10, message="all four pairs in the Redis cache")
        client = redis.Redis.from_url(redis_url)
        try:
            keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}*")])
            assert f"{redis_prefix}cache:ltp:BTC/USD" in keys
            assert any(k.startswith(f"{redis_prefix}ratelimit:") for k in keys)
            ttl = await client.pttl(f"{redis_prefix}cache:ltp:BTC/USD")
            assert 0 < ttl <= 30_000
        finally:
            await client.aclose()
        ready = await http.get(f"{app.base_url}/ready")
        assert ready.status_code == 200
        assert ready.json()["services"]["cache"] == "ready"


async def test_redis_down_keeps_serving_from_memory_and_ready_says_503(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest, http: httpx.AsyncClient
) -> None:
    settings = app_settings(
        kraken_ws_url=kraken_ws.url,
        kraken_rest_url=kraken_rest.base_url,
        cache_backend="redis",
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
    )
    async with running_app(settings) as app:

        async def served() -> bool:
            return (await http.get(f"{app.base_url}/api/v1/ltp")).status_code == 200

        await wait_for(served, 10, message="prices served from memory without Redis")
        ready = await http.get(f"{app.base_url}/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unhealthy"
        assert body["services"]["cache"] == "unhealthy"
        assert any(error.startswith("cache (redis)") for error in body["errors"])
        assert "127.0.0.1:1" not in ready.text  # no connection details leak
        cached = await http.get(f"{app.base_url}/api/v1/ltp/cached")
        assert cached.status_code == 200  # served from memory, and marked so
        assert cached.json()["source"] == "memory"
        assert "BTC/USD" in {entry["pair"] for entry in cached.json()["ltp"]}
        # The rate limiter fails open: the API stays up.
        assert (await http.get(f"{app.base_url}/api/v1/pairs")).status_code == 200
        metrics = (await http.get(f"{app.base_url}/metrics")).text
        assert any(  # the write-behind writes one pair with set, several with set_many
            line.startswith('tokenpulse_cache_operations_total{backend="redis",operation="set')
            and 'result="error"' in line
            for line in metrics.splitlines()
        )
