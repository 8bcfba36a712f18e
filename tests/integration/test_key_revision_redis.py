"""The keys' shared revision in a real Redis: a change made without any bus message reaches a
running key cache within a second, and a Redis failure neither raises nor loses the change."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.fakes._loopback import free_port
from tests.helpers import wait_for
from tokenpulse.domain.errors import StoreError
from tokenpulse.services.access._revision import RevisionWatch
from tokenpulse.services.access.keys import KeyService
from tokenpulse.store.cache.redis import from_url
from tokenpulse.store.history import migrate
from tokenpulse.store.keyrevision import RedisKeyRevision
from tokenpulse.store.keys import SqlKeyStore

pytestmark = pytest.mark.services

PEPPER = "test-pepper-0123456789"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = from_url(redis_url)
    yield redis_client
    await redis_client.aclose()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    await migrate.upgrade(url)
    return url


async def test_a_change_without_a_bus_message_reaches_the_cache_within_a_second(
    client: aioredis.Redis, redis_prefix: str, db_url: str
) -> None:
    reader_store, writer_store = SqlKeyStore.from_url(db_url), SqlKeyStore.from_url(db_url)
    revision = RedisKeyRevision(client, key_prefix=redis_prefix)
    # The writer has no bus at all: no message is ever published (a CLI whose PUBLISH was lost).
    writer = KeyService(writer_store, pepper=PEPPER, revision=revision)
    running = KeyService(
        reader_store,
        pepper=PEPPER,
        refresh_interval=3600,
        revision=RedisKeyRevision(client, key_prefix=redis_prefix),
    )
    ended: list[str] = []
    running.on_revoked(ended.append)
    try:
        await running.start()
        record, text = await writer.create(name="ci")
        await wait_for(lambda: running.authenticate(text.encode()) is not None, 2)
        before = await revision.current()

        await writer.revoke(record.key_id)
        revoked_at = time.monotonic()
        await wait_for(lambda: running.authenticate(text.encode()) is None, 2)
        assert time.monotonic() - revoked_at < 1.0
        assert record.key_id in ended  # live streams of the key are told
        assert await revision.current() == before + 1
    finally:
        await running.stop()
        await reader_store.close()
        await writer_store.close()


async def test_an_unreadable_revision_reloads_once_it_is_readable_again(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    dead = from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(1)

    try:
        down = RevisionWatch(RedisKeyRevision(dead, key_prefix=redis_prefix), reload)
        assert await down.check() is False  # no error escapes, nothing reloaded
        assert reloads == []
        with pytest.raises(StoreError):
            await RedisKeyRevision(dead, key_prefix=redis_prefix).bump()
    finally:
        await dead.aclose()

    watch = RevisionWatch(RedisKeyRevision(client, key_prefix=redis_prefix), reload)
    assert await watch.check() is True  # first read: the cache may be behind
    assert await watch.check() is False  # nothing moved
    await RedisKeyRevision(client, key_prefix=redis_prefix).bump()
    assert await watch.check() is True
    assert len(reloads) == 2
    watch.seen = None  # as after a failed read: reload even though the value did not move
    assert await watch.check() is True
