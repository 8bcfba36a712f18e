"""One contract for every Cache backend: the memory one and Redis (real server).

The ``cache`` fixture is parametrised over the backends (like hynek/stamina's backend
fixture), so each test runs once per backend; the Redis run uses the test's own prefix.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.helpers import wait_for
from tokenpulse.domain.errors import StoreError
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.cache.memory import MemoryCache
from tokenpulse.store.cache.redis import RedisCache, from_url, ttl_to_px

DEFAULT_TTL = 30.0
SHORT_TTL = 0.05
DEADLINE = 3.0


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(backend, Redis URL, key prefix); only the Redis run needs (and may skip for) Redis."""
    if request.param == "memory":
        return "memory", "", ""
    # A sync fixture, because async fixtures cannot request fixtures dynamically.
    return "redis", request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def cache(backend: tuple[str, str, str], metrics: Metrics) -> AsyncIterator[Cache]:
    """Each backend in turn; the Redis one on the real server under this test's prefix."""
    name, redis_url, prefix = backend
    if name == "memory":
        memory = MemoryCache(default_ttl=DEFAULT_TTL, max_entries=10_000, metrics=metrics)
        yield memory
        await memory.close()
        return
    client = from_url(redis_url)
    redis_cache = RedisCache(client, default_ttl=DEFAULT_TTL, key_prefix=prefix, metrics=metrics)
    try:
        yield redis_cache
    finally:
        await redis_cache.close()
        await client.aclose()


def operations(metrics: Metrics, cache: Cache, operation: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_cache_operations_total",
        {"backend": cache.backend, "operation": operation, "result": result},
    )
    return value or 0.0


async def test_is_a_cache(cache: Cache) -> None:
    assert isinstance(cache, Cache)
    assert cache.default_ttl == DEFAULT_TTL
    await cache.ping()


async def test_get_set_delete(cache: Cache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", b"1")
    assert await cache.get("a") == b"1"
    await cache.set("a", b"2")
    assert await cache.get("a") == b"2"
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert await cache.get("a") is None


async def test_get_many_and_set_many(cache: Cache) -> None:
    assert await cache.get_many([]) == []
    await cache.set_many({})
    await cache.set_many({"a": b"1", "b": b"2", "c": b"3"})
    assert await cache.get_many(["c", "missing", "a", "a"]) == [b"3", None, b"1", b"1"]


async def test_bytes_round_trip_exactly(cache: Cache) -> None:
    values = {
        "all-bytes": bytes(range(256)),
        "empty": b"",
        "utf8": "ü€😀".encode(),
        "bad-utf8": b"\xff\xfe\x00\x80",
        "json": b'{"price":"64000.10","pair":"BTC/USD"}',
        "big": bytes(range(256)) * 4096,
    }
    await cache.set_many(values)
    assert await cache.get_many(list(values)) == list(values.values())
    for key, value in values.items():
        got = await cache.get(key)
        assert got == value
        assert type(got) is bytes


async def test_unicode_and_glob_keys(cache: Cache) -> None:
    await cache.set("pair:BTC/USD", b"1")
    await cache.set("pair:ÉTH/€", b"2")
    await cache.set("glob:*?[x]\\", b"3")
    await cache.set("glob:plain", b"4")
    assert await cache.get("pair:ÉTH/€") == b"2"
    assert await cache.scan("pair:") == {"pair:BTC/USD": b"1", "pair:ÉTH/€": b"2"}
    assert await cache.scan("glob:*") == {"glob:*?[x]\\": b"3"}


async def test_scan_and_count(cache: Cache) -> None:
    assert await cache.scan("") == {}
    assert await cache.count() == 0
    await cache.set_many({"ticker:a": b"1", "ticker:b": b"2", "token:c": b"3"})
    assert await cache.scan("ticker:") == {"ticker:a": b"1", "ticker:b": b"2"}
    assert await cache.scan("nothing:") == {}
    assert await cache.scan("") == {"ticker:a": b"1", "ticker:b": b"2", "token:c": b"3"}
    assert await cache.count() == 3
    await cache.delete("ticker:a")
    assert await cache.count() == 2


async def test_scan_many_entries(cache: Cache) -> None:
    items = {f"k:{i:05d}": str(i).encode() for i in range(1500)}
    await cache.set_many(items)
    assert await cache.scan("k:") == items
    assert await cache.count() == 1500


@pytest.mark.parametrize("ttl", [0.0, -1.0, -math.inf, math.nan])
async def test_invalid_ttl_raises_and_changes_nothing(cache: Cache, ttl: float) -> None:
    await cache.set("a", b"old")
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("a", b"new", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("b", b"new", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await cache.set_many({"a": b"new", "c": b"new"}, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await cache.set_many({}, ttl=ttl)
    assert await cache.get_many(["a", "b", "c"]) == [b"old", None, None]
    assert await cache.count() == 1


async def test_none_ttl_is_the_default(cache: Cache) -> None:
    await cache.set("a", b"1", ttl=None)
    await cache.set_many({"b": b"2"}, ttl=None)
    await cache.set("short", b"3", ttl=SHORT_TTL)

    async def short_gone() -> bool:
        return await cache.get("short") is None

    await wait_for(short_gone, DEADLINE)
    # The default (30 s) entries outlive the short one.
    assert await cache.get_many(["a", "b"]) == [b"1", b"2"]


async def test_entries_expire(cache: Cache) -> None:
    await cache.set("one", b"1", ttl=SHORT_TTL)
    await cache.set_many({"two": b"2", "three": b"3"}, ttl=SHORT_TTL)
    await cache.set("kept", b"k", ttl=DEFAULT_TTL)

    async def all_gone() -> bool:
        return await cache.get_many(["one", "two", "three"]) == [None, None, None]

    await wait_for(all_gone, DEADLINE)
    assert await cache.get("kept") == b"k"
    assert await cache.scan("") == {"kept": b"k"}

    async def counted_once() -> bool:
        return await cache.count() == 1

    await wait_for(counted_once, DEADLINE)


async def test_sub_millisecond_ttl_expires_almost_at_once(cache: Cache) -> None:
    started = time.monotonic()
    await cache.set("tiny", b"x", ttl=1e-6)

    async def gone() -> bool:
        return await cache.get("tiny") is None

    await wait_for(gone, 1.0)
    assert time.monotonic() - started < 1.0


async def test_ttl_beyond_a_day_works(cache: Cache) -> None:
    await cache.set("day", b"1", ttl=25 * 3600)
    await cache.set_many({"week": b"2"}, ttl=7 * 86400)
    await cache.set("forever", b"3", ttl=math.inf)
    assert await cache.get_many(["day", "week", "forever"]) == [b"1", b"2", b"3"]


async def test_concurrent_use_is_consistent(cache: Cache) -> None:
    async def write_then_read(i: int) -> bytes | None:
        await cache.set(f"c:{i}", f"value-{i}".encode())
        await asyncio.sleep(0)  # let the other tasks interleave
        return await cache.get(f"c:{i}")

    results = await asyncio.gather(*(write_then_read(i) for i in range(200)))
    assert results == [f"value-{i}".encode() for i in range(200)]
    assert await cache.count() == 200

    # 200 concurrent writers on one key: the survivor is one of the written values.
    await asyncio.gather(*(cache.set("shared", f"w{i}".encode()) for i in range(200)))
    assert await cache.get("shared") in {f"w{i}".encode() for i in range(200)}
    deleted = await asyncio.gather(*(cache.delete(f"c:{i}") for i in range(200)))
    assert all(deleted)
    assert await cache.count() == 1


async def test_operations_are_counted(cache: Cache, metrics: Metrics) -> None:
    await cache.set("a", b"1")
    await cache.get("a")
    await cache.get("a")
    await cache.get("missing")
    await cache.set_many({"b": b"2", "c": b"3"})
    await cache.get_many(["a", "b", "nope"])
    assert operations(metrics, cache, "set", "ok") == 1.0
    assert operations(metrics, cache, "get", "hit") == 2.0
    assert operations(metrics, cache, "get", "miss") == 1.0
    assert operations(metrics, cache, "set_many", "ok") == 1.0
    assert operations(metrics, cache, "get_many", "hit") == 2.0
    assert operations(metrics, cache, "get_many", "miss") == 1.0
    assert operations(metrics, cache, "get", "error") == 0.0
    assert await cache.count() == 3
    gauge = metrics.registry.get_sample_value("tokenpulse_cache_keys", {"backend": cache.backend})
    assert gauge == 3.0


# --- Redis-only behaviour ----------------------------------------------------------------


async def test_redis_sets_px_in_milliseconds(redis_url: str, redis_prefix: str) -> None:
    client = from_url(redis_url)
    try:
        cache = RedisCache(client, default_ttl=DEFAULT_TTL, key_prefix=redis_prefix)
        await cache.set("day", b"1", ttl=25 * 3600)
        await cache.set("default", b"2")
        await cache.set_many({"many": b"4"}, ttl=2.5)
        await cache.set("forever", b"5", ttl=math.inf)
        day = await client.pttl(redis_prefix + "day")
        assert 25 * 3600 * 1000 - 5000 < day <= 25 * 3600 * 1000
        assert 25_000 < await client.pttl(redis_prefix + "default") <= 30_000
        assert 0 < await client.pttl(redis_prefix + "many") <= 2500
        assert await client.pttl(redis_prefix + "forever") == -1
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("seconds", "px"),
    [(0.001, 1), (0.0001, 1), (0.0101, 11), (0.007, 7), (2.0, 2000), (90_000.0, 90_000_000)],
)
def test_ttl_to_px_rounds_up_to_whole_milliseconds(seconds: float, px: int) -> None:
    assert ttl_to_px(seconds) == px


def test_huge_ttl_means_no_expiry() -> None:
    assert ttl_to_px(math.inf) is None
    assert ttl_to_px(1e300) is None


async def test_redis_sees_only_keys_under_its_prefix(redis_url: str, redis_prefix: str) -> None:
    client = from_url(redis_url)
    try:
        # Both keys stay under the test's prefix; only one is under the cache's.
        inner = RedisCache(client, default_ttl=DEFAULT_TTL, key_prefix=redis_prefix + "inner:")
        await client.set(redis_prefix + "outer:a", b"x", px=60_000)
        await client.set(redis_prefix + "innerX", b"x", px=60_000)
        await inner.set("a", b"1")
        assert await inner.scan("") == {"a": b"1"}
        assert await inner.count() == 1
        assert await inner.get("outer:a") is None
        assert await client.get(redis_prefix + "inner:a") == b"1"
    finally:
        await client.aclose()


async def test_redis_rejects_a_decoding_client(redis_url: str) -> None:
    client = from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisCache(client, default_ttl=1.0, key_prefix="x:")
    finally:
        await client.aclose()


async def test_redis_failures_become_store_errors(metrics: Metrics) -> None:
    # Port 1 on loopback is closed: every command fails to connect.
    client = from_url("redis://:s3cret-password@127.0.0.1:1/0", retry=None)
    cache = RedisCache(client, default_ttl=1.0, key_prefix="p:", metrics=metrics)
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("get", lambda: cache.get("a")),
        ("get_many", lambda: cache.get_many(["a"])),
        ("set", lambda: cache.set("a", b"1")),
        ("set_many", lambda: cache.set_many({"a": b"1"})),
        ("delete", lambda: cache.delete("a")),
        ("scan", lambda: cache.scan("")),
        ("count", cache.count),
        ("ping", cache.ping),
    ]
    try:
        for operation, call in calls:
            with pytest.raises(StoreError) as caught:
                await call()
            message = str(caught.value)
            assert operation in message
            assert "s3cret" not in message
            assert "127.0.0.1" not in message
            assert operations(metrics, cache, operation, "error") == 1.0
    finally:
        await client.aclose()
