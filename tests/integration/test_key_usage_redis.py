"""Per-key usage totals in a real Redis: two instances' counts add up, a failed write keeps
its counts for the next one (nothing lost, nothing twice), and a read falls back to this
instance's counts when Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.fakes._loopback import free_port
from tokenpulse.domain.errors import StoreError
from tokenpulse.observability._access_metrics import KeyUsage
from tokenpulse.services.access.usage import UsageSync
from tokenpulse.store.cache.redis import from_url
from tokenpulse.store.keyusage import RedisKeyUsage

pytestmark = pytest.mark.services


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = from_url(redis_url)
    yield redis_client
    await redis_client.aclose()


def counted(requests: int = 0, limited: int = 0, streams: int = 0, messages: int = 0) -> KeyUsage:
    usage = KeyUsage()
    for _ in range(requests):
        usage.count("k1", "pro", 0)
    for _ in range(limited):
        usage.count("k1", "pro", 1)
    for _ in range(streams):
        usage.count("k1", "pro", 2)
    usage.messages("k1", messages)
    return usage


async def test_two_instances_counts_add_up_and_unwritten_counts_are_included(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    one = UsageSync(counted(requests=3, limited=1), RedisKeyUsage(client, key_prefix=redis_prefix))
    two = UsageSync(
        counted(requests=2, streams=1, messages=7), RedisKeyUsage(client, key_prefix=redis_prefix)
    )
    await one.flush()
    await two.flush()
    await one.flush()  # nothing new: nothing added twice
    one.counts.count("k1", "pro", 0)  # counted, not written yet: this instance adds it
    usage, scope = await one.usage("k1")
    assert scope == "all_instances"
    assert usage == {
        "requests": 6,
        "rate_limited": 1,
        "stream_connections": 1,
        "stream_messages": 7,
    }
    await one.flush()
    assert (await two.usage("k1"))[0]["requests"] == 6
    ttl = await client.pttl(f"{redis_prefix}usage:k1")
    assert 0 < ttl <= 7 * 86400 * 1000


async def test_a_failed_write_keeps_its_counts_and_a_read_falls_back(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    dead = from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    counts = counted(requests=4)
    try:
        down = UsageSync(counts, RedisKeyUsage(dead, key_prefix=redis_prefix))
        with pytest.raises(StoreError):
            await down.flush()
        usage, scope = await down.usage("k1")
        assert scope == "this_instance"
        assert usage["requests"] == 4
    finally:
        await dead.aclose()
    up = UsageSync(counts, RedisKeyUsage(client, key_prefix=redis_prefix))
    await up.flush()  # the counts the failed write kept
    await up.flush()
    assert await RedisKeyUsage(client, key_prefix=redis_prefix).read("k1") == {
        "requests": 4,
        "rate_limited": 0,
        "stream_connections": 0,
        "stream_messages": 0,
    }
