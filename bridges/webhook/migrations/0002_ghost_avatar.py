"""A ghost remembers the Matrix picture its avatar URL became (the core sets it from that).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_ghost") as batch:
        batch.add_column(sa.Column("avatar_mxc", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("webhook_ghost") as batch:
        batch.drop_column("avatar_mxc")
