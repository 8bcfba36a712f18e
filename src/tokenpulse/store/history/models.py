"""History tables (SQLAlchemy Core) and the two column types that make them portable.

Tables, all keyed by (key, time) so the primary key is the (key, time) index:

* ``token_snapshots`` — one row per token per second (``ts`` truncated to the second; a
  second written twice keeps the last value).
* ``ltp_samples`` — one row per pair per second, last value wins.
* ``token_rollups`` / ``ltp_rollups`` — 1-minute, 1-hour and 1-day buckets in **one table per
  kind** with a ``bucket_seconds`` column (60, 3600, 86400). The three granularities have
  identical columns, so one table means one upsert, one select and one retention statement
  for all of them, and a new granularity is a new value rather than a migration. The primary
  key (key, bucket_seconds, ts) serves every series query as a single index range scan.
  Token buckets keep ``velocity_sum`` and ``velocity_count`` besides the mean, so coarser
  buckets (and 5m/15m/4h at query time) combine finer ones exactly.
* ``history_rollup_queue`` — the minutes written since they were last rolled up, inserted
  in the same transaction as the raw rows. :meth:`HistoryRepository.rollup` recomputes only
  those buckets, and nothing is lost if the process stops before a rollup ran.

Numbers keep every digit: :class:`ExactDecimal` is ``NUMERIC`` (no precision limit) on
PostgreSQL and ``TEXT`` holding the positional digits on SQLite, whose NUMERIC affinity
would turn values into floats. All arithmetic on them (rollups, means) happens in Python, so
both backends give identical results. On PostgreSQL, engines made by
``create_history_engine`` exchange NUMERIC with asyncpg as text, so values come back with
the digits PostgreSQL stored. Times are :class:`UtcSecond`: ``TIMESTAMP WITH TIME ZONE`` on
PostgreSQL, integer unix seconds on SQLite; both read back as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.tokens import TokenSnapshot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)

ORIGIN_LIVE = "live"
ORIGIN_BACKFILL = "backfill"
ORIGINS = (ORIGIN_LIVE, ORIGIN_BACKFILL)

#: bucket_seconds of the stored rollups, finest first.
ROLLUP_SECONDS = (60, 3600, 86400)

KIND_TOKEN = "token"  # noqa: S105 - a row kind, not a credential
KIND_PAIR = "pair"


def epoch_seconds(moment: datetime) -> int:
    """Whole unix seconds of an aware datetime (floor), exact integer arithmetic."""
    if moment.tzinfo is None:
        raise ValueError("history times must be timezone-aware UTC")
    return (moment - EPOCH) // ONE_SECOND


def from_epoch_seconds(seconds: int) -> datetime:
    """Unix seconds back to an aware UTC datetime."""
    return EPOCH + timedelta(seconds=seconds)


def snapshot_time(snapshot: TokenSnapshot) -> datetime:
    """The time a token snapshot is filed under: the provider's ``as_of``, else receive time."""
    return snapshot.quote.as_of or snapshot.quote.received_at


def ticker_time(ticker: Ticker) -> datetime:
    """The time an LTP reading is filed under: the exchange's time, else receive time."""
    return ticker.as_of or ticker.received_at


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """A Decimal stored digit for digit: NUMERIC on PostgreSQL, TEXT on SQLite."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """TEXT on SQLite, NUMERIC (unbounded precision) elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Decimal as is for PostgreSQL, its positional digits for SQLite."""
        if value is None or dialect.name != "sqlite":
            return value
        # Positional notation ("500000000000", not "5E+11"): what PostgreSQL stores too.
        return format(value, "f")

    # The series queries convert ~100 000 values per call, so the processor is a plain
    # function rather than the generic TypeDecorator wrapper around process_result_value.
    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """Text -> Decimal on SQLite; asyncpg already hands back Decimal (see _engine)."""
        return _to_decimal if dialect.name == "sqlite" else None

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Text -> Decimal, for callers that use the TypeDecorator hook directly."""
        return _to_decimal(value) if isinstance(value, str) else value


class UtcSecond(sa.types.TypeDecorator[datetime]):
    """An aware UTC time truncated to the second: TIMESTAMPTZ on PostgreSQL, INTEGER on SQLite."""

    impl = sa.Integer
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """INTEGER unix seconds on SQLite, TIMESTAMP WITH TIME ZONE elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Integer())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """An aware datetime, floored to its second (naive datetimes are refused)."""
        if value is None:
            return None
        seconds = epoch_seconds(value)
        if dialect.name == "sqlite":
            return seconds
        return from_epoch_seconds(seconds)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """Unix seconds -> aware UTC datetime on SQLite; nothing to do on PostgreSQL."""
        if dialect.name == "sqlite":
            return _sqlite_time
        # asyncpg already returns TIMESTAMPTZ as an aware UTC datetime.
        return None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """The stored time as an aware UTC datetime."""
        if value is None:
            return None
        return _sqlite_time(value) if dialect.name == "sqlite" else _aware_utc(value)


def _to_decimal(value: str | None, _decimal: type[Decimal] = Decimal) -> Decimal | None:
    return None if value is None else _decimal(value)


def _sqlite_time(value: int | None, _from: Any = datetime.fromtimestamp) -> datetime | None:
    return None if value is None else _from(value, UTC)


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


metadata = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"})

_origin_check = "origin IN ('live', 'backfill')"
# SQLite: the primary key *is* the table (no separate rowid b-tree), so a (key, time) range
# scan reads rows in order from one index.
_sqlite_clustered: dict[str, Any] = {"sqlite_with_rowid": False}

token_snapshots = sa.Table(
    "token_snapshots",
    metadata,
    sa.Column("token_id", sa.String(128), primary_key=True),
    sa.Column("ts", UtcSecond(), primary_key=True),
    sa.Column("price", ExactDecimal()),
    sa.Column("market_cap", ExactDecimal()),
    sa.Column("volume_24h", ExactDecimal()),
    sa.Column("circulating_supply", ExactDecimal()),
    sa.Column("velocity", ExactDecimal()),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.CheckConstraint(_origin_check, name="ck_token_snapshots_origin"),
    sa.Index("ix_token_snapshots_ts", "ts"),
    **_sqlite_clustered,
)

ltp_samples = sa.Table(
    "ltp_samples",
    metadata,
    sa.Column("pair", sa.String(32), primary_key=True),
    sa.Column("ts", UtcSecond(), primary_key=True),
    sa.Column("price", ExactDecimal(), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    # The reading's own time (µs since the epoch): the later reading of a second wins, in
    # whatever order two writers' rows arrive (a take-over, a spill replayed after a restart).
    sa.Column("observed_us", sa.BigInteger(), nullable=True),
    sa.CheckConstraint(_origin_check, name="ck_ltp_samples_origin"),
    sa.Index("ix_ltp_samples_ts", "ts"),
    **_sqlite_clustered,
)

token_rollups = sa.Table(
    "token_rollups",
    metadata,
    sa.Column("token_id", sa.String(128), primary_key=True),
    sa.Column("bucket_seconds", sa.Integer(), primary_key=True),
    sa.Column("ts", UtcSecond(), primary_key=True),
    sa.Column("open", ExactDecimal()),
    sa.Column("high", ExactDecimal()),
    sa.Column("low", ExactDecimal()),
    sa.Column("close", ExactDecimal()),
    sa.Column("market_cap", ExactDecimal()),
    sa.Column("volume_24h", ExactDecimal()),
    sa.Column("velocity", ExactDecimal()),
    sa.Column("velocity_sum", ExactDecimal()),
    sa.Column("velocity_count", sa.Integer(), nullable=False),
    sa.Column("samples", sa.Integer(), nullable=False),
    sa.Index("ix_token_rollups_bucket_ts", "bucket_seconds", "ts"),
    **_sqlite_clustered,
)

ltp_rollups = sa.Table(
    "ltp_rollups",
    metadata,
    sa.Column("pair", sa.String(32), primary_key=True),
    sa.Column("bucket_seconds", sa.Integer(), primary_key=True),
    sa.Column("ts", UtcSecond(), primary_key=True),
    sa.Column("open", ExactDecimal(), nullable=False),
    sa.Column("high", ExactDecimal(), nullable=False),
    sa.Column("low", ExactDecimal(), nullable=False),
    sa.Column("close", ExactDecimal(), nullable=False),
    sa.Column("samples", sa.Integer(), nullable=False),
    sa.Index("ix_ltp_rollups_bucket_ts", "bucket_seconds", "ts"),
    **_sqlite_clustered,
)

rollup_queue = sa.Table(
    "history_rollup_queue",
    metadata,
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("ts", UtcSecond(), primary_key=True),
    sa.Column("marked_ns", sa.BigInteger(), nullable=False),
    **_sqlite_clustered,
)

#: Which kind of data the store holds, ``live`` or ``replay`` (SPEC §3.6): one row, id 1.
store_mode = sa.Table(
    "history_store_mode",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("claimed_at", UtcSecond(), nullable=False),
    sa.CheckConstraint("mode IN ('live', 'replay')", name="ck_history_store_mode_mode"),
    sa.CheckConstraint("id = 1", name="ck_history_store_mode_one_row"),
)

#: Raw table and key column per kind.
RAW_TABLES = {KIND_TOKEN: token_snapshots, KIND_PAIR: ltp_samples}
ROLLUP_TABLES = {KIND_TOKEN: token_rollups, KIND_PAIR: ltp_rollups}
KEY_COLUMNS = {KIND_TOKEN: "token_id", KIND_PAIR: "pair"}


# --------------------------------------------------------------------------- access (§8.1)
#: Stored API keys (``store/keys.py``): never a secret, only its HMAC-SHA-256 keyed with
#: AUTH_KEY_PEPPER; the previous hash stays valid until ``previous_expires_at`` after a
#: rotation. Allowed origins/IPs are comma-separated (empty: any).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("previous_hash", sa.String(64)),
    sa.Column("previous_expires_at", UtcSecond()),
    sa.Column("created_at", UtcSecond(), nullable=False),
    sa.Column("last_used_at", UtcSecond()),
    sa.Column("expires_at", UtcSecond()),
    sa.Column("revoked_at", UtcSecond()),
    sa.Column("allowed_origins", sa.Text(), nullable=False),
    sa.Column("allowed_ips", sa.Text(), nullable=False),
)
