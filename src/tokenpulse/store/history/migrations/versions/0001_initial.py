"""History store: raw token snapshots and LTP samples, their rollups, the rollup queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tokenpulse.store.history.models import ExactDecimal, UtcSecond

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORIGIN = "origin IN ('live', 'backfill')"
_CLUSTERED = {"sqlite_with_rowid": False}


def upgrade() -> None:
    """Create every history table and index."""
    op.create_table(
        "token_snapshots",
        sa.Column("token_id", sa.String(128), nullable=False),
        sa.Column("ts", UtcSecond(), nullable=False),
        sa.Column("price", ExactDecimal()),
        sa.Column("market_cap", ExactDecimal()),
        sa.Column("volume_24h", ExactDecimal()),
        sa.Column("circulating_supply", ExactDecimal()),
        sa.Column("velocity", ExactDecimal()),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "ts", name="pk_token_snapshots"),
        sa.CheckConstraint(_ORIGIN, name="ck_token_snapshots_origin"),
        **_CLUSTERED,
    )
    op.create_index("ix_token_snapshots_ts", "token_snapshots", ["ts"])
    op.create_table(
        "ltp_samples",
        sa.Column("pair", sa.String(32), nullable=False),
        sa.Column("ts", UtcSecond(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("pair", "ts", name="pk_ltp_samples"),
        sa.CheckConstraint(_ORIGIN, name="ck_ltp_samples_origin"),
        **_CLUSTERED,
    )
    op.create_index("ix_ltp_samples_ts", "ltp_samples", ["ts"])
    op.create_table(
        "token_rollups",
        sa.Column("token_id", sa.String(128), nullable=False),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("ts", UtcSecond(), nullable=False),
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
        sa.PrimaryKeyConstraint("token_id", "bucket_seconds", "ts", name="pk_token_rollups"),
        **_CLUSTERED,
    )
    op.create_index("ix_token_rollups_bucket_ts", "token_rollups", ["bucket_seconds", "ts"])
    op.create_table(
        "ltp_rollups",
        sa.Column("pair", sa.String(32), nullable=False),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("ts", UtcSecond(), nullable=False),
        sa.Column("open", ExactDecimal(), nullable=False),
        sa.Column("high", ExactDecimal(), nullable=False),
        sa.Column("low", ExactDecimal(), nullable=False),
        sa.Column("close", ExactDecimal(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pair", "bucket_seconds", "ts", name="pk_ltp_rollups"),
        **_CLUSTERED,
    )
    op.create_index("ix_ltp_rollups_bucket_ts", "ltp_rollups", ["bucket_seconds", "ts"])
    op.create_table(
        "history_rollup_queue",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("ts", UtcSecond(), nullable=False),
        sa.Column("marked_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "ts", name="pk_history_rollup_queue"),
        **_CLUSTERED,
    )


def downgrade() -> None:
    """Drop every history table (and with them their indexes)."""
    for table in (
        "history_rollup_queue",
        "ltp_rollups",
        "token_rollups",
        "ltp_samples",
        "token_snapshots",
    ):
        op.drop_table(table)
