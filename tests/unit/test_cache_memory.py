"""MemoryCache with a fake clock: expiry, incremental sweep, capacity eviction, metrics."""

from __future__ import annotations

import pytest

from tests.helpers import FakeClock
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.cache.memory import HEAP_SLACK_MIN, MemoryCache


@pytest.fixture
def cache(clock: FakeClock, metrics: Metrics) -> MemoryCache:
    return MemoryCache(default_ttl=10.0, max_entries=100, metrics=metrics, clock=clock)


def evictions(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_cache_evictions_total", {"backend": "memory", "reason": reason}
    )
    return value or 0.0


def test_implements_the_port(cache: MemoryCache) -> None:
    assert isinstance(cache, Cache)
    assert cache.backend == "memory"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default_ttl": 0.0, "max_entries": 1}, "ttl"),
        ({"default_ttl": float("nan"), "max_entries": 1}, "ttl"),
        ({"default_ttl": 1.0, "max_entries": 0}, "max_entries"),
    ],
)
def test_rejects_bad_configuration(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryCache(**kwargs)  # type: ignore[arg-type]


async def test_entry_lives_until_its_expiry_exactly(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.set("k", b"v", ttl=5.0)
    clock.advance(4.999)
    assert await cache.get("k") == b"v"
    clock.advance(0.001)
    assert await cache.get("k") is None


async def test_default_ttl_applies_when_ttl_is_none(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.set("k", b"v")
    clock.advance(9.9)
    assert await cache.get("k") == b"v"
    clock.advance(0.1)
    assert await cache.get("k") is None


async def test_sub_millisecond_ttl_is_one_millisecond(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.set("k", b"v", ttl=1e-9)
    clock.advance(0.0009)
    assert await cache.get("k") == b"v"
    clock.advance(0.0001)
    assert await cache.get("k") is None


async def test_ttl_beyond_a_day_and_infinite(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.set("day", b"1", ttl=25 * 3600)
    await cache.set("forever", b"2", ttl=float("inf"))
    clock.advance(25 * 3600 - 1)
    assert await cache.get_many(["day", "forever"]) == [b"1", b"2"]
    clock.advance(1)
    assert await cache.get_many(["day", "forever"]) == [None, b"2"]


async def test_expired_read_is_evicted_and_counted(
    cache: MemoryCache, clock: FakeClock, metrics: Metrics
) -> None:
    await cache.set("k", b"v", ttl=1.0)
    clock.advance(2.0)
    assert await cache.get("k") is None
    assert "k" not in cache._entries
    assert evictions(metrics, "expired") == 1.0
    assert await cache.delete("k") is False


async def test_writes_sweep_expired_entries_without_reads(
    cache: MemoryCache, clock: FakeClock, metrics: Metrics
) -> None:
    for i in range(50):
        await cache.set(f"old{i}", b"x", ttl=1.0)
    clock.advance(2.0)
    for i in range(10):
        await cache.set(f"new{i}", b"y", ttl=1.0)
    # Each write sweeps a batch of due entries, so the 50 old ones are gone after 10 writes.
    assert set(cache._entries) == {f"new{i}" for i in range(10)}
    assert evictions(metrics, "expired") == 50.0
    assert evictions(metrics, "capacity") == 0.0


async def test_memory_stays_bounded_under_steady_churn(
    cache: MemoryCache, clock: FakeClock
) -> None:
    for i in range(10_000):
        await cache.set(f"k{i}", b"x", ttl=0.5)
        clock.advance(0.01)
    # About 0.5 s worth of entries (50) are live; the rest were swept.
    assert len(cache._entries) <= 60
    assert len(cache._heap) <= 60


async def test_overwrites_do_not_grow_the_heap_without_bound(
    cache: MemoryCache, clock: FakeClock
) -> None:
    for i in range(20_000):
        await cache.set("hot", str(i).encode(), ttl=3600.0)
    assert await cache.get("hot") == b"19999"
    assert len(cache._heap) <= 2 + HEAP_SLACK_MIN + 1
    assert await cache.count() == 1


async def test_capacity_evicts_the_entry_expiring_soonest(
    clock: FakeClock, metrics: Metrics
) -> None:
    cache = MemoryCache(default_ttl=10.0, max_entries=3, metrics=metrics, clock=clock)
    await cache.set("a", b"a", ttl=10.0)
    await cache.set("b", b"b", ttl=5.0)
    await cache.set("c", b"c", ttl=20.0)
    await cache.set("b", b"b2", ttl=30.0)  # overwrite: no eviction, b now expires last
    assert evictions(metrics, "capacity") == 0.0
    await cache.set("d", b"d", ttl=1.0)
    assert await cache.get_many(["a", "b", "c", "d"]) == [None, b"b2", b"c", b"d"]
    assert evictions(metrics, "capacity") == 1.0
    assert await cache.count() == 3


async def test_capacity_prefers_expired_entries_over_live_ones(
    clock: FakeClock, metrics: Metrics
) -> None:
    cache = MemoryCache(default_ttl=10.0, max_entries=2, metrics=metrics, clock=clock)
    await cache.set("short", b"s", ttl=1.0)
    await cache.set("long", b"l", ttl=100.0)
    clock.advance(2.0)
    await cache.set("new", b"n")
    assert await cache.get_many(["long", "new"]) == [b"l", b"n"]
    assert evictions(metrics, "capacity") == 0.0
    assert evictions(metrics, "expired") == 1.0


async def test_set_many_respects_capacity(clock: FakeClock, metrics: Metrics) -> None:
    cache = MemoryCache(default_ttl=10.0, max_entries=5, metrics=metrics, clock=clock)
    await cache.set_many({f"k{i}": b"v" for i in range(8)})
    assert await cache.count() == 5
    assert evictions(metrics, "capacity") == 3.0


async def test_count_and_scan_ignore_expired_entries(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.set("p:a", b"1", ttl=1.0)
    await cache.set("p:b", b"2", ttl=10.0)
    await cache.set("q:c", b"3", ttl=10.0)
    assert await cache.count() == 3
    clock.advance(5.0)
    assert await cache.count() == 2
    assert await cache.scan("p:") == {"p:b": b"2"}


async def test_count_sets_the_keys_gauge(cache: MemoryCache, metrics: Metrics) -> None:
    await cache.set_many({"a": b"1", "b": b"2"})
    assert await cache.count() == 2
    gauge = metrics.registry.get_sample_value("tokenpulse_cache_keys", {"backend": "memory"})
    assert gauge == 2.0


async def test_works_without_metrics(clock: FakeClock) -> None:
    cache = MemoryCache(default_ttl=1.0, max_entries=1, clock=clock)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    clock.advance(2.0)
    assert await cache.get_many(["a", "b"]) == [None, None]
    await cache.ping()
    await cache.close()
    assert await cache.count() == 0
