"""The API key store (SPEC §8.1): the ``api_keys`` table of the history database.

Rows hold a key's id, name, owner, tier, role, times and allow-lists, and its secret only as
the keyed hash ``domain.access.hash_secret`` made; nothing here ever sees a secret. Every
database failure surfaces as :class:`~tokenpulse.domain.errors.StoreError` (no SQL, no URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tokenpulse.domain.access import KeyRecord
from tokenpulse.store.history._engine import create_history_engine, store_errors
from tokenpulse.store.history.models import api_keys

#: Columns a management operation may change.
MUTABLE = frozenset(
    {
        "name",
        "owner",
        "tier",
        "role",
        "secret_hash",
        "previous_hash",
        "previous_expires_at",
        "expires_at",
        "revoked_at",
        "allowed_origins",
        "allowed_ips",
    }
)


def _joined(values: tuple[str, ...]) -> str:
    return ",".join(values)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(item for item in (text or "").split(",") if item)


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        name=row["name"],
        owner=row["owner"],
        tier=row["tier"],
        role=row["role"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        allowed_origins=_split(row["allowed_origins"]),
        allowed_ips=_split(row["allowed_ips"]),
        previous_hash=row["previous_hash"],
        previous_expires_at=row["previous_expires_at"],
    )


def _row(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "name": record.name,
        "owner": record.owner,
        "tier": record.tier,
        "role": record.role,
        "secret_hash": record.secret_hash,
        "previous_hash": record.previous_hash,
        "previous_expires_at": record.previous_expires_at,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "allowed_origins": _joined(record.allowed_origins),
        "allowed_ips": _joined(record.allowed_ips),
    }


class SqlKeyStore:
    """Keys in SQLite or PostgreSQL through one async engine (the history store's)."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str) -> SqlKeyStore:
        """A store on an engine of its own (the CLI)."""
        return cls(create_history_engine(url), owns_engine=True)

    async def insert(self, record: KeyRecord) -> None:
        """Store a new key."""
        with store_errors("key insert"):
            async with self.engine.begin() as conn:
                await conn.execute(api_keys.insert().values(**_row(record)))

    async def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id, or None."""
        with store_errors("key read"):
            async with self.engine.connect() as conn:
                result = await conn.execute(api_keys.select().where(api_keys.c.key_id == key_id))
                row = result.mappings().first()
        return None if row is None else _record(row)

    async def all(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        with store_errors("key read"):
            async with self.engine.connect() as conn:
                result = await conn.execute(
                    api_keys.select().order_by(api_keys.c.created_at, api_keys.c.key_id)
                )
                rows = result.mappings().all()
        return [_record(row) for row in rows]

    async def update(self, key_id: str, **values: Any) -> KeyRecord | None:
        """Change the named columns of one key; the key after the change (None: no such key)."""
        unknown = set(values) - MUTABLE
        if unknown:
            raise ValueError(f"not changeable: {', '.join(sorted(unknown))}")
        for name in ("allowed_origins", "allowed_ips"):
            if name in values:
                values[name] = _joined(tuple(values[name]))
        with store_errors("key update"):
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    api_keys.update().where(api_keys.c.key_id == key_id).values(**values)
                )
                if result.rowcount == 0:
                    return None
                found = await conn.execute(api_keys.select().where(api_keys.c.key_id == key_id))
                row = found.mappings().first()
        return None if row is None else _record(row)

    async def touch(self, used: Mapping[str, datetime]) -> None:
        """Record when each key was last used (one statement per key, one transaction)."""
        if not used:
            return
        with store_errors("key touch"):
            async with self.engine.begin() as conn:
                for key_id, moment in used.items():
                    await conn.execute(
                        api_keys.update()
                        .where(api_keys.c.key_id == key_id)
                        .values(last_used_at=moment)
                    )

    async def close(self) -> None:
        """Dispose of the engine if this store created it."""
        if self._owns_engine:
            await self.engine.dispose()
