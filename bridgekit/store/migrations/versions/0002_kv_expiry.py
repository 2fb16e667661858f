"""Values in ``kv`` may expire (``ctx.kv.set(..., ttl_seconds=...)``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("kv") as batch:
        batch.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_kv_expires_at", "kv", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_kv_expires_at", table_name="kv")
    with op.batch_alter_table("kv") as batch:
        batch.drop_column("expires_at")
