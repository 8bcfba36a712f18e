"""Leader election on the real Redis: one leader, fast take-over, no split brain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis

from tests.helpers import wait_for
from tokenpulse.store.leader import LeaderElection

TTL = 0.6


class Instance:
    """One campaigning instance that records what its hooks were told."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.events: list[str] = []
        self.election = LeaderElection(client, key=key, ttl=TTL)
        self.task: asyncio.Task[None] | None = None

    async def elected(self) -> None:
        self.events.append("elected")

    async def deposed(self) -> None:
        self.events.append("deposed")


@asynccontextmanager
async def campaigning(redis_url: str, key: str, count: int) -> AsyncIterator[list[Instance]]:
    client = redis.Redis.from_url(redis_url)
    instances = [Instance(client, key) for _ in range(count)]
    for instance in instances:
        instance.task = asyncio.create_task(
            instance.election.run(on_elected=instance.elected, on_deposed=instance.deposed)
        )
    try:
        yield instances
    finally:
        for instance in instances:
            await instance.election.stop()
            assert instance.task is not None
            await asyncio.wait_for(instance.task, 5)
        await client.aclose()


def leaders(instances: list[Instance]) -> list[Instance]:
    return [i for i in instances if i.election.is_leader]


async def test_exactly_one_leader_and_take_over_on_stop(redis_url: str, redis_prefix: str) -> None:
    async with campaigning(redis_url, f"{redis_prefix}leader", 3) as instances:
        await wait_for(lambda: len(leaders(instances)) == 1, 5, message="one leader")
        for _ in range(10):  # stays exactly one across several renewals
            assert len(leaders(instances)) == 1
            await asyncio.sleep(TTL / 6)  # sampling while renewals happen, not a wait
        first = leaders(instances)[0]
        await first.election.stop()
        assert first.events == ["elected", "deposed"]
        others = [i for i in instances if i is not first]
        took = await wait_for(
            lambda: len(leaders(others)) == 1, 5, message="another instance to take over"
        )
        assert took < TTL * 2  # released on stop: no need to wait for the TTL


async def test_a_leader_whose_lock_is_taken_steps_down(redis_url: str, redis_prefix: str) -> None:
    key = f"{redis_prefix}leader"
    async with campaigning(redis_url, key, 1) as (instance,):
        await wait_for(lambda: instance.election.is_leader, 5, message="elected")
        client = redis.Redis.from_url(redis_url)
        try:
            await client.set(key, b"someone-else", px=60_000)  # e.g. after a failover
        finally:
            await client.aclose()
        await wait_for(lambda: not instance.election.is_leader, 5, message="stepped down")
        assert instance.events == ["elected", "deposed"]


async def test_unreachable_redis_ingests_provisionally_after_a_ttl(redis_prefix: str) -> None:
    async with campaigning("redis://127.0.0.1:1/0", f"{redis_prefix}leader", 1) as (instance,):
        took = await wait_for(
            lambda: instance.election.is_leader, 5, message="provisional leadership"
        )
        assert took >= TTL * 0.9  # not before Redis has been unreachable for a whole TTL
        assert instance.events == ["elected"]


async def test_a_provisional_leader_yields_to_the_lock_holder(
    redis_url: str, redis_prefix: str
) -> None:
    key = f"{redis_prefix}leader"
    async with campaigning("redis://127.0.0.1:1/0", key, 1) as (orphan,):
        await wait_for(lambda: orphan.election.is_leader, 5, message="provisional leadership")
        async with campaigning(redis_url, key, 1) as (holder,):
            await wait_for(lambda: holder.election.is_leader, 5, message="the real leader")
            # Redis "returns" for the orphan: point its lock at the real server.
            orphan.election._lock.redis = redis.Redis.from_url(redis_url)
            try:
                await wait_for(
                    lambda: not orphan.election.is_leader, 5, message="the orphan to yield"
                )
            finally:
                await orphan.election._lock.redis.aclose()
            assert orphan.events == ["elected", "deposed"]
            assert holder.election.is_leader
