"""History store: which kind of data it holds, live or replay (SPEC §3.6).

One row, written by the first start that opens the store; a start of the other kind is then
refused, so a demo's replayed values never sit in live history (and the reverse).

Revision ID: 0003
Revises: 0002_api_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tokenpulse.store.history.models import UtcSecond

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the one-row mode table."""
    op.create_table(
        "history_store_mode",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("claimed_at", UtcSecond(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_store_mode"),
        sa.CheckConstraint("mode IN ('live', 'replay')", name="ck_history_store_mode_mode"),
        sa.CheckConstraint("id = 1", name="ck_history_store_mode_one_row"),
    )


def downgrade() -> None:
    """Drop the mode table."""
    op.drop_table("history_store_mode")
