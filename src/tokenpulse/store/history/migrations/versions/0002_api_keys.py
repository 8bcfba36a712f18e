"""Access control: the API key store (SPEC §8.1).

Revision ID: 0002_api_keys
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tokenpulse.store.history.models import UtcSecond

revision: str = "0002_api_keys"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``api_keys``: key id, name, owner, tier, role, keyed hashes, times, allow-lists."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
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
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )


def downgrade() -> None:
    """Drop ``api_keys``."""
    op.drop_table("api_keys")
