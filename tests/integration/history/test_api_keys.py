"""The key store on SQLite and PostgreSQL: the whole lifecycle, and no secret in any table."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import wait_for
from tokenpulse.domain.access import KeyRecord
from tokenpulse.domain.errors import InvalidParameter, TokenNotFound
from tokenpulse.services.access.keys import KeyService
from tokenpulse.store.history._engine import create_history_engine
from tokenpulse.store.keys import SqlKeyStore

pytestmark = pytest.mark.services

PEPPER = "test-pepper-0123456789"


async def dump_text(url: str) -> str:
    """Every row of every table as text: what a stolen backup would show."""
    engine = create_history_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            chunks = []
            for name in names:
                rows = (await conn.execute(sa.text(f'SELECT * FROM "{name}"'))).all()  # noqa: S608
                chunks.append(repr(rows))
        return "\n".join(chunks)
    finally:
        await engine.dispose()


@pytest.fixture
async def keys(db_url: str) -> Any:
    store = SqlKeyStore.from_url(db_url)
    service = KeyService(store, pepper=PEPPER)
    await service.reload()
    yield service
    await store.close()


async def test_key_lifecycle(keys: KeyService) -> None:
    record, text = await keys.create(name="grafana", owner="ops", tier="pro", role="analyst")
    assert text.startswith(f"tp_live_{record.key_id}_")
    principal = keys.authenticate(text.encode())
    assert principal is not None
    assert (principal.key_id, principal.tier, principal.role) == (record.key_id, "pro", "analyst")
    assert keys.authenticate((text + "x").encode()) is None
    assert [r.key_id for r in await keys.list()] == [record.key_id]
    shown = await keys.show(record.key_id)
    assert (shown.name, shown.owner) == ("grafana", "ops")

    assert (await keys.set_tier(record.key_id, "enterprise")).tier == "enterprise"
    assert (await keys.set_role(record.key_id, "reader")).role == "reader"
    principal = keys.authenticate(text.encode())
    assert principal is not None
    assert (principal.tier, principal.role) == ("enterprise", "reader")

    rotated, new_text = await keys.rotate(record.key_id, grace=3600)
    assert new_text != text
    assert rotated.previous_expires_at is not None
    assert keys.authenticate(new_text.encode()) is not None
    assert keys.authenticate(text.encode()) is not None  # the grace period
    _, newest = await keys.rotate(record.key_id, grace=0)
    assert keys.authenticate(new_text.encode()) is None  # no grace this time
    assert keys.authenticate(newest.encode()) is not None

    revoked = await keys.revoke(record.key_id)
    assert revoked.revoked_at is not None
    assert revoked.status(revoked.revoked_at) == "revoked"
    assert keys.authenticate(newest.encode()) is None
    assert (await keys.revoke(record.key_id)).revoked_at == revoked.revoked_at  # idempotent


async def test_bad_input_changes_nothing(keys: KeyService) -> None:
    with pytest.raises(InvalidParameter, match="tiers: free, pro, enterprise"):
        await keys.create(name="x", tier="gold")
    with pytest.raises(InvalidParameter, match="roles: reader, analyst, admin"):
        await keys.create(name="x", role="root")
    with pytest.raises(InvalidParameter, match="name"):
        await keys.create(name="  ")
    with pytest.raises(TokenNotFound):
        await keys.revoke("0123456789ab")
    assert await keys.list() == []


async def test_the_database_holds_no_secret(keys: KeyService, db_url: str) -> None:
    texts = [(await keys.create(name=f"k{i}"))[1] for i in range(3)]
    record, rotated = await keys.rotate(texts[0].split("_")[2], grace=60)
    texts.append(rotated)
    keys.authenticate(texts[1].encode())
    await keys.flush_usage()  # last_used_at written too
    dump = await dump_text(db_url)
    assert record.key_id in dump
    for text in texts:
        secret = text.split("_", 3)[3]
        assert secret not in dump
        assert text not in dump


async def test_an_expired_key_is_refused_without_a_query(keys: KeyService) -> None:
    from datetime import timedelta

    from tokenpulse.domain.time import utcnow

    _, text = await keys.create(name="short", expires_at=utcnow() + timedelta(seconds=1))
    assert keys.authenticate(text.encode()) is not None
    keys.clock = lambda: utcnow().timestamp() + 2
    assert keys.authenticate(text.encode()) is None


async def test_last_used_is_written_in_batches(keys: KeyService) -> None:
    record, text = await keys.create(name="used")
    assert (await keys.show(record.key_id)).last_used_at is None
    for _ in range(100):
        assert keys.authenticate(text.encode()) is not None
    await keys.flush_usage()
    assert (await keys.show(record.key_id)).last_used_at is not None


class SlowReadStore(SqlKeyStore):
    """The real key store, whose ``all()`` answers only when the test lets it: a reload that
    read the store just before another change was written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read = asyncio.Event()
        self.answer = asyncio.Event()
        self.answer.set()

    async def all(self) -> list[KeyRecord]:
        records = await super().all()
        self.read.set()
        await self.answer.wait()
        return records


async def test_a_reload_does_not_undo_changes_made_while_it_read(db_url: str) -> None:
    store = SlowReadStore.from_url(db_url)
    assert isinstance(store, SlowReadStore)
    keys = KeyService(store, pepper=PEPPER)
    try:
        old, old_text = await keys.create(name="old")
        store.answer.clear()
        reload = asyncio.create_task(keys.reload())
        await wait_for(store.read.is_set, 5, message="the reload read the store")
        _, new_text = await keys.create(name="created meanwhile")
        await keys.revoke(old.key_id)
        store.answer.set()
        await reload
        assert keys.authenticate(new_text.encode()) is not None
        assert keys.authenticate(old_text.encode()) is None  # stays revoked
        await keys.reload()  # the next reload reads both changes from the store
        assert keys.authenticate(new_text.encode()) is not None
        assert keys.authenticate(old_text.encode()) is None
    finally:
        await store.close()
