"""Which kind of data a history store holds, live or replay (SPEC §3.6).

The first start that opens a store writes its mode into ``history_store_mode``; a start of
the other kind is refused with :class:`StoreModeConflict`, naming the database and the way
out. A store from before the marker existed is judged by its rows once (replayed rows carry
``source = 'replay'``), then marked.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokenpulse.domain.errors import StoreModeConflict
from tokenpulse.store.history.models import ltp_samples, store_mode, token_snapshots

LIVE, REPLAY = "live", "replay"


def describe(engine: AsyncEngine) -> str:
    """The database as a user names it: the SQLite file, or the URL without its password."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite":
        return f"the file {url.database}"
    return f"the database {url.render_as_string(hide_password=True)}"


async def claim(engine: AsyncEngine, mode: str, now: datetime) -> str:
    """Mark the store as ``mode`` (live or replay), or raise if it holds the other kind.

    Returns the mode the store had (``mode`` itself, or ``"new"`` for a fresh store).
    """
    async with engine.begin() as conn:
        found = (await conn.execute(sa.select(store_mode.c.mode))).scalar_one_or_none()
        had = found
        if found is None:
            found = await _judge_rows(conn)
            had = found or "new"
        if found is not None and found != mode:
            raise StoreModeConflict([_conflict(describe(engine), found, mode)])
        if had != mode:
            await conn.execute(sa.insert(store_mode).values(id=1, mode=mode, claimed_at=now))
        return str(had)


async def _judge_rows(conn: AsyncConnection) -> str | None:
    """``replay`` if any row was replayed, ``live`` if any row exists, else None."""
    for table in (ltp_samples, token_snapshots):
        replayed = sa.select(table.c.source).where(table.c.source == REPLAY).limit(1)
        if (await conn.execute(replayed)).first() is not None:
            return REPLAY
    for table in (ltp_samples, token_snapshots):
        if (await conn.execute(sa.select(table.c.source).limit(1))).first() is not None:
            return LIVE
    return None


def _conflict(where: str, found: str, mode: str) -> str:
    if found == REPLAY:
        return (
            f"DATABASE_URL: {where} holds replayed (demo) history, and a live start would mix "
            "real values into it. Replay keeps its own database by default (data/replay.db): "
            "leave DATABASE_URL unset for SOURCES=replay, point DATABASE_URL at another "
            "database for live data, or delete the file to start afresh"
        )
    return (
        f"DATABASE_URL: {where} holds live history, and SOURCES=replay would write demo "
        "values into it. Leave DATABASE_URL unset (replay then uses data/replay.db) or point "
        "it at another database"
    )
