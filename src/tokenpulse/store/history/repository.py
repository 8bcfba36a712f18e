"""The history store: token snapshots and LTP samples in SQLite or PostgreSQL, same code.

Writes are upserts on (key, second) — the last value of a second wins — and each call is one
transaction that also queues the touched minutes for :meth:`HistoryRepository.rollup`.
Backfill writes never replace a ``live`` row. Reads are single Core selects turned into
plain dicts (the selects are in ``_reads``, the upserts in ``_writes``). Every database
failure surfaces as :class:`StoreError` without SQL or URL.

Writes, rollups and retention of one repository run one at a time (an asyncio lock): the
service has one writer (the ingest leader), and SQLite allows one writer anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker, sample_micros
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.tokens import TokenSnapshot
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.history import _mode, _reads, _rollup, _writes
from tokenpulse.store.history import _series as series
from tokenpulse.store.history._engine import create_history_engine, store_errors
from tokenpulse.store.history.models import (
    KIND_PAIR,
    KIND_TOKEN,
    ORIGIN_LIVE,
    ORIGINS,
    RAW_TABLES,
    epoch_seconds,
    from_epoch_seconds,
    snapshot_time,
    ticker_time,
)

Row = dict[str, Any]


class HistoryRepository:
    """Reads and writes token and LTP history through one :class:`AsyncEngine`.

    Build it with :meth:`from_url` (or an engine from ``create_history_engine``): that
    engine sets SQLite's WAL mode and PostgreSQL's exact NUMERIC exchange.
    """

    def __init__(self, engine: AsyncEngine, *, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics
        name = engine.dialect.name
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported history database {name!r}: use SQLite or PostgreSQL")
        self._insert: Callable[[sa.Table], Any] = (
            sqlite.insert if name == "sqlite" else postgresql.insert
        )
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, metrics: Metrics | None = None, **engine_kw: Any
    ) -> HistoryRepository:
        """A repository on a new engine for ``url`` (SQLite's directory is created)."""
        return cls(create_history_engine(url, **engine_kw), metrics=metrics)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises StoreError when the database cannot answer."""
        with store_errors("ping"):
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

    async def claim_mode(self, mode: str) -> str:
        """Mark the store as holding ``live`` or ``replay`` data; the mode it had (or "new").

        Raises :class:`~tokenpulse.domain.errors.StoreModeConflict` when it holds the other
        kind, StoreError when the database cannot answer.
        """
        with store_errors("claim mode"):
            return await _mode.claim(self.engine, mode, utcnow())

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    # ------------------------------------------------------------------ writes

    async def write_tokens(
        self, rows: Sequence[TokenSnapshot], *, origin: str = ORIGIN_LIVE
    ) -> int:
        """Upsert token snapshots on (token_id, second) in one transaction; rows written.

        ``market_cap`` is the one velocity used (the provider's, or derived), so a stored
        row always satisfies velocity = volume_24h / market_cap.
        """
        values: dict[tuple[str, int], Row] = {}
        for snapshot in rows:
            second = epoch_seconds(snapshot_time(snapshot))
            quote = snapshot.quote
            market_cap = snapshot.market_cap_used
            values[(snapshot.identity.id, second)] = {
                "token_id": snapshot.identity.id,
                "ts": from_epoch_seconds(second),
                "price": quote.price_usd,
                "market_cap": market_cap if market_cap is not None else quote.market_cap_usd,
                "volume_24h": quote.volume_24h_usd,
                "circulating_supply": quote.circulating_supply,
                "velocity": snapshot.velocity,
                "source": quote.source,
                "origin": origin,
            }
        return await self._write(KIND_TOKEN, list(values.values()), origin, "write_tokens")

    async def write_ltp(self, rows: Sequence[Ticker], *, origin: str = ORIGIN_LIVE) -> int:
        """Upsert LTP samples on (pair, second) in one transaction; rows written."""
        values: dict[tuple[str, int], Row] = {}
        for ticker in rows:
            second = epoch_seconds(ticker_time(ticker))
            pair = str(ticker.pair)
            values[(pair, second)] = {
                "pair": pair,
                "ts": from_epoch_seconds(second),
                "price": ticker.last,
                "source": ticker.source,
                "origin": origin,
                "observed_us": sample_micros(ticker),
            }
        return await self._write(KIND_PAIR, list(values.values()), origin, "write_ltp")

    async def write_token_points(
        self,
        token_id: str,
        points: Sequence[
            tuple[datetime, Decimal | None, Decimal | None, Decimal | None, Decimal | None]
        ],
        *,
        origin: str = "backfill",
        source: str = "coingecko",
    ) -> int:
        """Upsert ``(t, price, market_cap, volume, velocity)`` points; rows actually written.

        Idempotent: a point equal to the stored row is skipped, and a ``live`` row is never
        replaced by a non-live one, so writing the same points twice writes 0 rows.
        """
        values: dict[int, Row] = {}
        for at, price, market_cap, volume, velocity in points:
            second = epoch_seconds(at)
            values[second] = {
                "token_id": token_id,
                "ts": from_epoch_seconds(second),
                "price": price,
                "market_cap": market_cap,
                "volume_24h": volume,
                "circulating_supply": None,
                "velocity": velocity,
                "source": source,
                "origin": origin,
            }
        return await self._write(KIND_TOKEN, list(values.values()), origin, "write_token_points")

    async def write_ltp_points(
        self,
        pair: Pair | str,
        points: Sequence[tuple[datetime, Decimal]],
        *,
        origin: str = "backfill",
        source: str = "kraken_rest",
    ) -> int:
        """Upsert ``(t, price)`` LTP points (e.g. candle closes); rows actually written.

        Same guarantees as :meth:`write_token_points`: idempotent, never over a live row.
        """
        name = str(pair)
        values: dict[int, Row] = {}
        for at, price in points:
            second = epoch_seconds(at)
            values[second] = {
                "pair": name,
                "ts": from_epoch_seconds(second),
                "price": price,
                "source": source,
                "origin": origin,
            }
        return await self._write(KIND_PAIR, list(values.values()), origin, "write_ltp_points")

    async def _write(self, kind: str, values: list[Row], origin: str, operation: str) -> int:
        if origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
        if not values:
            return 0
        table = RAW_TABLES[kind]
        async with self._lock:
            with store_errors(operation):
                async with self.engine.begin() as conn:
                    if origin != ORIGIN_LIVE:
                        values = await _writes.not_kept(conn, kind, values)
                    if values:
                        await conn.execute(_writes.raw_upsert(self._insert, kind, origin), values)
                        await _writes.queue_minutes(conn, self._insert, kind, values)
        if self.metrics is not None and values:
            self.metrics.history_write_batches.labels(table.name).inc()
            self.metrics.history_rows_written.labels(table.name, origin).inc(len(values))
        return len(values)

    # ------------------------------------------------------------------ reads

    async def token_series(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        granularity: str = "raw",
        fields: Sequence[str] | None = None,
        *,
        max_points: int = series.MAX_POINTS,
    ) -> list[Row]:
        """Points of one token in ``[start, end)`` as dicts ``{"t": datetime, ...}``.

        Raw points carry price, market_cap, volume_24h, circulating_supply, velocity,
        source, origin; rollup points (1m, 5m, 15m, 1h, 4h, 1d; ``t`` is the bucket start)
        carry open, high, low, close, market_cap, volume_24h, velocity (mean), samples.
        ``fields`` restricts the keys. More than ``max_points`` points raise
        InvalidParameter naming a granularity that fits.
        """
        return await _reads.read_series(
            self.engine, KIND_TOKEN, token_id, start, end, granularity, fields, max_points
        )

    async def ltp_series(
        self,
        pair: Pair | str,
        start: datetime,
        end: datetime,
        granularity: str = "raw",
        fields: Sequence[str] | None = None,
        *,
        max_points: int = series.MAX_POINTS,
    ) -> list[Row]:
        """Points of one pair: raw (price, source, origin) or OHLC buckets with samples."""
        return await _reads.read_series(
            self.engine, KIND_PAIR, str(pair), start, end, granularity, fields, max_points
        )

    async def velocity_points(
        self, token_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """Velocities in ``[start, end)`` for trends (SPEC §4.4), oldest first.

        Up to 12 h: every raw velocity. Up to 8 days: 1-minute means. Longer: hourly means.
        Points without a velocity are left out.
        """
        return await _reads.read_velocity_points(self.engine, token_id, start, end)

    async def token_gaps(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        *,
        expected_interval: timedelta,
        granularity: str = "raw",
    ) -> list[tuple[datetime, datetime]]:
        """Holes in ``[start, end)`` longer than twice ``expected_interval``, oldest first.

        Each hole is ``(last point before it or start, first point after it or end)``.
        ``granularity`` picks the table searched: raw rows, or the stored rollup behind it.
        """
        return await _reads.read_gaps(
            self.engine, KIND_TOKEN, token_id, start, end, expected_interval, granularity
        )

    async def ltp_gaps(
        self,
        pair: Pair | str,
        start: datetime,
        end: datetime,
        *,
        expected_interval: timedelta,
        granularity: str = "raw",
    ) -> list[tuple[datetime, datetime]]:
        """Holes in one pair's samples, as :meth:`token_gaps`."""
        return await _reads.read_gaps(
            self.engine, KIND_PAIR, str(pair), start, end, expected_interval, granularity
        )

    # ------------------------------------------------------------------ maintenance

    async def rollup(self, now: datetime) -> dict[str, int]:
        """Recompute the 1m/1h/1d buckets of every minute written since the last run.

        Only minutes that have ended by ``now`` are rolled up (an open minute waits for its
        last sample). Idempotent; returns buckets written per level (``token_1m`` …).
        """
        async with self._lock:
            with store_errors("rollup"):
                return await _rollup.roll_pending(self.engine, self._insert, now)

    async def apply_retention(
        self, now: datetime, raw_keep: timedelta, rollup_keep: timedelta
    ) -> dict[str, int]:
        """Delete raw rows older than ``raw_keep`` and rollups older than ``rollup_keep``.

        A row goes only when its whole interval (one second, or its bucket) ended before the
        cut-off. Pending rollups run first, so no raw row is deleted before it was rolled
        up. Returns rows deleted per table.
        """
        raw_cut = epoch_seconds(now - raw_keep)
        rollup_cut = epoch_seconds(now - rollup_keep)
        async with self._lock:
            with store_errors("retention"):
                await _rollup.roll_pending(self.engine, self._insert, now)
                async with self.engine.begin() as conn:
                    deleted = await _rollup.delete_old(conn, raw_cut, rollup_cut)
        return deleted
