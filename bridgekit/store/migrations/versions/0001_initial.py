"""The initial tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full, not imported from the models: a migration must keep creating the same
tables after the models have moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_VALUE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
FALSE = sa.text("false")
ZERO = sa.text("0")
PENDING = sa.text("'pending'")
EMPTY = sa.text("''")
EMPTY_OBJECT = sa.text("'{}'")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIG_ID, autoincrement=True, nullable=False)


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), server_default=FALSE, nullable=False)


def _metadata() -> sa.Column[object]:
    return sa.Column("metadata", JSON_VALUE, server_default=EMPTY_OBJECT, nullable=False)


def upgrade() -> None:
    _create_transport_tables()
    _create_identity_tables()
    _create_room_tables()
    _create_message_tables()
    _create_matrix_state_tables()
    op.create_table(
        "kv",
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", JSON_VALUE, nullable=False),
        sa.PrimaryKeyConstraint("network", "key", name="pk_kv"),
    )


def _create_transport_tables() -> None:
    op.create_table(
        "as_txn",
        _id(),
        sa.Column("txn_id", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_txn"),
        sa.UniqueConstraint("txn_id", "fingerprint", name="uq_as_txn_txn_fingerprint"),
    )
    op.create_index("ix_as_txn_received_at", "as_txn", ["received_at"])

    op.create_table(
        "inbox_event",
        _id(),
        sa.Column("txn_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("room_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("queue_key", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'accepted'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("handled_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_event"),
        sa.UniqueConstraint("event_id", name="uq_inbox_event_event_id"),
    )
    op.create_index("ix_inbox_event_received_at", "inbox_event", ["received_at"])
    op.create_table(
        "inbox_cursor",
        sa.Column("queue_key", sa.Text(), nullable=False),
        sa.Column("done_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("queue_key", name="pk_inbox_cursor"),
    )


def _create_identity_tables() -> None:
    op.create_table(
        "matrix_user",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("management_room", sa.Text(), nullable=True),
        sa.Column("permission", sa.Text(), nullable=True),
        sa.Column("double_puppet_token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_matrix_user"),
    )

    op.create_table(
        "remote_session",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("owner_user_id", sa.Text(), nullable=True),
        sa.Column("remote_user_id", sa.Text(), nullable=True),
        sa.Column("remote_name", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), server_default=sa.text("'UNCONFIGURED'"), nullable=False),
        sa.Column("state_error", sa.Text(), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        _metadata(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_active_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_remote_session"),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["matrix_user.user_id"],
            name="fk_remote_session_owner_user_id_matrix_user",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "network",
            "kind",
            "owner_user_id",
            "remote_user_id",
            name="uq_remote_session_network_kind_owner_user_id_remote_user_id",
        ),
    )
    op.create_index("ix_remote_session_owner_user_id", "remote_session", ["owner_user_id"])

    op.create_table(
        "ghost",
        _id(),
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        _flag("registered"),
        sa.Column("name", sa.Text(), nullable=True),
        _flag("name_set"),
        sa.Column("avatar_id", sa.Text(), nullable=True),
        sa.Column("avatar_hash", sa.Text(), nullable=True),
        sa.Column("avatar_mxc", sa.Text(), nullable=True),
        _flag("avatar_set"),
        _flag("is_bot"),
        _metadata(),
        sa.Column("last_synced_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ghost"),
        sa.UniqueConstraint("network", "remote_id", name="uq_ghost_network_remote_id"),
        sa.UniqueConstraint("user_id", name="uq_ghost_user_id"),
    )


def _create_room_tables() -> None:
    op.create_table(
        "portal",
        _id(),
        sa.Column("network", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("receiver", sa.Text(), server_default=EMPTY, nullable=False),
        sa.Column("room_id", sa.Text(), nullable=True),
        sa.Column("room_type", sa.Text(), server_default=sa.text("'group'"), nullable=False),
        sa.Column("origin", sa.Text(), server_default=sa.text("'portal'"), nullable=False),
        sa.Column("relay_session_id", sa.Text(), nullable=True),
        sa.Column("other_user_id", sa.Text(), nullable=True),
        sa.Column("parent_id", BIG_ID, nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("avatar_id", sa.Text(), nullable=True),
        sa.Column("avatar_mxc", sa.Text(), nullable=True),
        _flag("name_set"),
        _flag("topic_set"),
        _flag("avatar_set"),
        _flag("encrypted"),
        sa.Column("bridge_info_version", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("last_remote_cursor", sa.Text(), nullable=True),
        _metadata(),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portal"),
        sa.ForeignKeyConstraint(
            ["relay_session_id"],
            ["remote_session.id"],
            name="fk_portal_relay_session_id_remote_session",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["portal.id"], name="fk_portal_parent_id_portal", ondelete="SET NULL"
        ),
        sa.UniqueConstraint(
            "network", "remote_id", "receiver", name="uq_portal_network_remote_id_receiver"
        ),
        sa.UniqueConstraint("room_id", name="uq_portal_room_id"),
    )
    op.create_index("ix_portal_relay_session_id", "portal", ["relay_session_id"])

    op.create_table(
        "session_portal",
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("portal_id", BIG_ID, nullable=False),
        _flag("preferred"),
        sa.Column("last_read_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "portal_id", name="pk_session_portal"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["remote_session.id"],
            name="fk_session_portal_session_id_remote_session",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["portal_id"],
            ["portal.id"],
            name="fk_session_portal_portal_id_portal",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_session_portal_portal_id", "session_portal", ["portal_id"])

    op.create_table(
        "outbox",
        _id(),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("portal_id", BIG_ID, nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("payload", JSON_VALUE, nullable=False),
        sa.Column("state", sa.Text(), server_default=PENDING, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["portal_id"], ["portal.id"], name="fk_outbox_portal_id_portal", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_portal_id_state_id", "outbox", ["portal_id", "state", "id"])


def _create_message_tables() -> None:
    op.create_table(
        "message",
        _id(),
        sa.Column("portal_id", BIG_ID, nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("part_id", sa.Text(), server_default=EMPTY, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("sender_user_id", sa.Text(), nullable=False),
        sa.Column("sender_remote_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("edit_count", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("reply_to_remote_id", sa.Text(), nullable=True),
        sa.Column("reply_to_part_id", sa.Text(), nullable=True),
        sa.Column("thread_root_remote_id", sa.Text(), nullable=True),
        sa.Column("send_txn_id", sa.Text(), nullable=True),
        _metadata(),
        sa.PrimaryKeyConstraint("id", name="pk_message"),
        sa.ForeignKeyConstraint(
            ["portal_id"], ["portal.id"], name="fk_message_portal_id_portal", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("event_id", name="uq_message_event_id"),
        sa.UniqueConstraint(
            "portal_id", "remote_id", "part_id", name="uq_message_portal_id_remote_id_part_id"
        ),
        sa.UniqueConstraint("portal_id", "send_txn_id", name="uq_message_portal_id_send_txn_id"),
    )

    op.create_table(
        "reaction",
        _id(),
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("sender_remote_id", sa.Text(), nullable=False),
        sa.Column("emoji_id", sa.Text(), nullable=False),
        sa.Column("emoji", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reaction"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name="fk_reaction_message_id_message",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("event_id", name="uq_reaction_event_id"),
        sa.UniqueConstraint(
            "message_id",
            "sender_remote_id",
            "emoji_id",
            name="uq_reaction_message_id_sender_remote_id_emoji_id",
        ),
    )


def _create_matrix_state_tables() -> None:
    op.create_table(
        "room_state",
        sa.Column("room_id", sa.Text(), nullable=False),
        sa.Column("power_levels", JSON_VALUE, nullable=True),
        sa.Column("encryption", JSON_VALUE, nullable=True),
        sa.Column("create_event", JSON_VALUE, nullable=True),
        sa.Column("join_rules", JSON_VALUE, nullable=True),
        _flag("members_fetched"),
        sa.PrimaryKeyConstraint("room_id", name="pk_room_state"),
    )

    op.create_table(
        "room_member",
        sa.Column("room_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("membership", sa.Text(), nullable=False),
        sa.Column("displayname", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="pk_room_member"),
    )

    op.create_table(
        "registered_user",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_registered_user"),
    )


def downgrade() -> None:
    # Children before parents, so foreign keys never point at a dropped table.
    for table in (
        "kv",
        "registered_user",
        "room_member",
        "room_state",
        "reaction",
        "message",
        "outbox",
        "session_portal",
        "portal",
        "ghost",
        "remote_session",
        "matrix_user",
        "inbox_cursor",
        "inbox_event",
        "as_txn",
    ):
        op.drop_table(table)
