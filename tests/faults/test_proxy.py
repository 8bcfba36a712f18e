"""The fault-injection proxy itself, against the real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.faults.proxy import TcpProxy


async def test_redis_through_the_proxy_can_be_cut_stalled_and_restored(
    redis_proxy: TcpProxy, proxied_redis_url: str
) -> None:
    client = aioredis.Redis.from_url(
        proxied_redis_url, socket_timeout=0.3, socket_connect_timeout=0.3, retry=None
    )
    try:
        assert await client.ping()
        redis_proxy.cut()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        redis_proxy.restore()
        assert await client.ping()
        redis_proxy.stall()
        with pytest.raises((RedisTimeoutError, RedisConnectionError)):
            await client.ping()
        redis_proxy.restore()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_postgres_through_the_proxy_can_be_cut_and_restored(
    pg_proxy: TcpProxy, proxied_pg_url: str
) -> None:
    dsn = proxied_pg_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    assert await conn.fetchval("SELECT 1") == 1
    pg_proxy.cut()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
    conn.terminate()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await asyncpg.connect(dsn, timeout=1)
    pg_proxy.restore()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
