"""The job queue connectors put side work in (``ctx.jobs``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_VALUE = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ordering_key", sa.Text(), nullable=False),
        sa.Column("unique_key", sa.Text(), nullable=True),
        sa.Column("payload", JSON_VALUE, nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.UniqueConstraint("network", "unique_key", name="uq_job_network_unique_key"),
    )
    op.create_index("ix_job_network_ordering_key_state_id", "job", ["network", "ordering_key", "state", "id"])
    op.create_index("ix_job_state", "job", ["state"])


def downgrade() -> None:
    op.drop_index("ix_job_state", table_name="job")
    op.drop_index("ix_job_network_ordering_key_state_id", table_name="job")
    op.drop_table("job")
