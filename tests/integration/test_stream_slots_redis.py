"""Per-key stream connection slots in a real Redis: atomic admission across instances,
expiry of an instance that stopped refreshing, and this instance's count when Redis fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from tests.fakes._loopback import free_port
from tests.helpers import wait_for
from tokenpulse.api.streams.access import StreamAccess
from tokenpulse.domain.access import Principal, TierLimits
from tokenpulse.domain.errors import LimitExceeded
from tokenpulse.store.cache.redis import from_url
from tokenpulse.store.streamslots import RedisStreamSlots

LIMITS = TierLimits(
    capacity=10,
    refill_rate=1.0,
    stream_connections=2,
    subscriptions=5,
    min_interval_ms=0,
    history_seconds=3600.0,
)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = from_url(redis_url)
    yield redis_client
    await redis_client.aclose()


async def test_concurrent_admissions_on_two_instances_never_pass_the_limit(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    one = RedisStreamSlots(client, key_prefix=redis_prefix, ttl=30)
    two = RedisStreamSlots(client, key_prefix=redis_prefix, ttl=30)
    results = await asyncio.gather(
        *(slots.acquire("k1", f"s{i}", 3) for i in range(10) for slots in (one, two))
    )
    assert sum(results) == 3
    assert await client.zcard(one.key("k1")) == 3
    assert await one.acquire("k2", "s0", 3)  # another key has slots of its own
    # an admitted member asking again keeps its slot (no double count)
    held = decoded(await client.zrange(one.key("k1"), 0, -1))
    instance, sid = held[0].split(":", 1)
    again = one if instance == one.instance else two
    assert await again.acquire("k1", sid, 3)
    assert await client.zcard(one.key("k1")) == 3
    await again.release("k1", sid)
    assert await client.zcard(one.key("k1")) == 2


async def test_refreshed_slots_stay_and_unrefreshed_ones_expire(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    live = RedisStreamSlots(client, key_prefix=redis_prefix, ttl=1.5)
    dead = RedisStreamSlots(client, key_prefix=redis_prefix, ttl=1.5)  # never refreshes
    assert await live.acquire("k", "a", 2)
    assert await dead.acquire("k", "b", 2)
    assert not await live.acquire("k", "c", 2)
    started = asyncio.get_running_loop().time()

    async def dead_one_expired() -> bool:
        await live.refresh({"k": ["a"]})
        return await live.acquire("k", "c", 2)

    await wait_for(dead_one_expired, 5, message="the dead instance's slot expiring")
    assert asyncio.get_running_loop().time() - started >= 1.0
    members = sorted(decoded(await client.zrange(live.key("k"), 0, -1)))
    assert members == sorted([live.member("a"), live.member("c")])
    assert 0 < await client.pttl(live.key("k")) <= 1500  # the set itself goes with them


async def test_stream_access_counts_on_this_instance_when_redis_fails() -> None:
    broken = from_url(f"redis://127.0.0.1:{free_port()}/0", retry=None)
    registry = CollectorRegistry()
    errors = Counter("slot_errors", "test", registry=registry)
    access = StreamAccess(
        tiers={"free": LIMITS},
        slots=RedisStreamSlots(broken, key_prefix="unused:", ttl=30),
        slot_errors=errors.inc,
    )
    principal = Principal(key_id="k", tier="free")
    try:
        with capture_logs() as logs:
            await access.open("s1", principal)
            await access.open("s2", principal)
            with pytest.raises(LimitExceeded):
                await access.open("s3", principal)
            access.close("s1")
            await access.open("s3", principal)
            await access.stop()
        assert registry.get_sample_value("slot_errors_total") == 5  # 4 admissions, 1 release
        assert {entry["event"] for entry in logs} == {"stream_slots_unavailable"}
    finally:
        await access.stop()
        await broken.aclose()


def decoded(members: Any) -> list[str]:
    return [member.decode() for member in members]
