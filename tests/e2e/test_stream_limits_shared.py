"""Two instances on one Redis share each key's stream connection limit (SPEC §8.2, §8.3): SSE and
Socket.IO count together, a closed stream frees a slot on the other instance, and the slot
of an instance that died (it stopped refreshing its entries) frees itself after the TTL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from tests.e2e.test_access_control import connected, create_key, refused, settings_for
from tests.helpers import wait_for
from tests.server import RunningApp, running_app

SLOT_TTL = 1.5  # seconds: the least AUTH_STREAM_SLOT_TTL allows


def sse_url(app: RunningApp) -> str:
    return f"{app.base_url}/api/v1/ltp/live?pair=BTC/USD"


@contextlib.asynccontextmanager
async def sse(http: httpx.AsyncClient, app: RunningApp, key: str) -> AsyncIterator[int]:
    """An SSE stream held open for the block; yields its status (429 bodies are read)."""
    async with http.stream("GET", sse_url(app), headers={"X-API-Key": key}) as response:
        if response.status_code != 200:
            body = await response.aread()
            assert b"LIMIT_EXCEEDED" in body, body
        yield response.status_code


async def sse_status(http: httpx.AsyncClient, app: RunningApp, key: str) -> int:
    async with sse(http, app, key) as status:
        return status


async def test_two_instances_share_a_keys_stream_connection_limit(
    http: httpx.AsyncClient, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = settings_for(
        tmp_path,
        cache_backend="redis",
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        tier_free_stream_connections=2,
        auth_stream_slot_ttl=f"{int(SLOT_TTL * 1000)}ms",
    )
    redis = aioredis.Redis.from_url(redis_url)
    async with running_app(settings) as one, running_app(settings) as two:
        created = await create_key(http, one, tier="free")
        key = created["key"]
        slots = f"{redis_prefix}streams:{created['key_id']}"

        async def known_on_two() -> bool:
            response = await http.get(f"{two.base_url}/api/v1/pairs", headers={"X-API-Key": key})
            return response.status_code == 200

        await wait_for(known_on_two, 5, message="the new key known on two")

        async with sse(http, one, key) as first, sse(http, two, key) as second:
            assert (first, second) == (200, 200)
            # the key's two slots are taken across the instances: a third is refused on both
            assert await sse_status(http, one, key) == 429
            assert await sse_status(http, two, key) == 429
            for app in (one, two):
                assert (await refused(app, {"api_key": key}))["code"] == "LIMIT_EXCEEDED"
            assert await redis.zcard(slots) == 2
            # the live streams stay counted past the TTL: their instances refresh them
            admitted_until = max(score for _, score in await _scores(redis, slots))

            async def past_first_expiry() -> bool:
                return await _redis_ms(redis) > admitted_until + 100

            await wait_for(past_first_expiry, 5, message="the first expiry passing")
            now = await _redis_ms(redis)
            scores = [score for _, score in await _scores(redis, slots)]
            assert len(scores) == 2
            assert min(scores) > now
            assert await sse_status(http, two, key) == 429

        # closing them frees their slots for the other instance
        await wait_for(lambda: _count_is(redis, slots, 0), 5, message="the slots freed")
        async with connected(two, {"api_key": key}), sse(http, one, key) as status:
            assert status == 200

        # an instance that died leaves its entry behind: it holds a slot until it expires
        await wait_for(lambda: _count_is(redis, slots, 0), 5, message="the slots freed")
        now_s, now_us = await redis.time()
        expires = now_s * 1000 + now_us // 1000 + int(SLOT_TTL * 1000)
        await redis.zadd(slots, {"dead-instance:sid": expires})
        async with sse(http, one, key) as status:
            assert status == 200
            assert await sse_status(http, two, key) == 429
            began = await _redis_seconds(redis)

            async def admitted_on_two() -> bool:
                return await sse_status(http, two, key) == 200

            await wait_for(admitted_on_two, 10, message="the dead instance's slot expiring")
            assert await _redis_seconds(redis) - began >= SLOT_TTL - 0.5
            members = decoded(await redis.zrange(slots, 0, -1))
            assert "dead-instance:sid" not in members
    await redis.aclose()


async def _count_is(redis: aioredis.Redis, slots: str, count: int) -> bool:
    return int(await redis.zcard(slots)) == count


async def _redis_ms(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds * 1000 + micros / 1000)


async def _redis_seconds(redis: aioredis.Redis) -> float:
    return await _redis_ms(redis) / 1000


async def _scores(redis: aioredis.Redis, slots: str) -> list[tuple[bytes, float]]:
    found: list[Any] = await redis.zrange(slots, 0, -1, withscores=True)
    return found


def decoded(members: Any) -> list[str]:
    return [member.decode() for member in members]
