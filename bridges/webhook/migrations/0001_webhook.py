"""The webhook bridge's tables as ``webhook.db`` had them last (schema version 1), less the
delivery and private-room tables (deliveries are jobs now; secrets go to management rooms).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ACTIVE = sa.text("'active'")


def upgrade() -> None:
    op.create_table(
        "webhook_hook",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("creator", sa.String(255), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64)),
        sa.Column("sealed_secret", sa.Text()),
        sa.Column("identity", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default=_ACTIVE),
        sa.Column("suspended_reason", sa.Text()),
    )
    op.create_table(
        "webhook_inbound",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("hook_id", sa.String(32), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("event_id", sa.String(255)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False, index=True),
        sa.Column("body_digest", sa.String(64)),
        sa.UniqueConstraint("hook_id", "idempotency_key"),
    )
    op.create_index("ix_webhook_inbound_body_digest", "webhook_inbound", ["hook_id", "body_digest"], unique=True)
    op.create_table(
        "webhook_ghost",
        sa.Column("hook_id", sa.String(32), primary_key=True),
        sa.Column("name_key", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("displayname", sa.String(255)),
        sa.Column("avatar_source", sa.Text()),
    )
    op.create_table(
        "webhook_outbound",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False, index=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(255), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default=_ACTIVE),
        sa.Column("suspended_reason", sa.Text()),
    )


def downgrade() -> None:
    for table in ("webhook_outbound", "webhook_ghost", "webhook_inbound", "webhook_hook"):
        op.drop_table(table)
