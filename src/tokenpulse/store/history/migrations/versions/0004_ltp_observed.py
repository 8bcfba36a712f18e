"""LTP samples remember the reading's own time, so the later reading of a second wins.

Two writers can file a reading under the same second in either order: the new leader after a
take-over and the old one replaying its spill at restart. ``observed_us`` (µs since the epoch,
null for rows written before this revision and for backfilled ones) lets the upsert keep the
later reading instead of the last-written one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (no rewrite of existing rows)."""
    with op.batch_alter_table("ltp_samples") as batch:
        batch.add_column(sa.Column("observed_us", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("ltp_samples") as batch:
        batch.drop_column("observed_us")
