"""The tables of bridgekit, as SQLAlchemy Core tables.

Conventions (see DESIGN §4 and research/framework.md §c.4):

- Matrix and remote IDs are text; times are BIGINT milliseconds since the epoch.
- Surrogate integer keys with the natural key as a UNIQUE constraint, so foreign keys stay small
  and re-keying a portal touches one row.
- Every row that belongs to a network has a ``network`` column: one process can host several
  connectors.
- Connector data goes into the JSON ``metadata`` column (``meta`` in Python, because
  ``metadata`` is taken by SQLAlchemy), never into new core columns.

Core, not ORM: the stores use nothing but these tables, and the ORM costs a running bridge
6-7 MB resident (issue 16). ``models.py`` maps ORM classes onto the same tables for code that
wants them (tests, connectors' own sessions); nothing in the running bridge imports it. The
migration in ``migrations/versions`` creates exactly these tables; a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

from bridgekit.store.json_type import JsonValue

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so a migration can name what it alters (SQLite batch mode)."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)

BIG_ID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
"""BIGINT on PostgreSQL; INTEGER on SQLite, where only ``INTEGER PRIMARY KEY`` autoincrements."""

JSON_VALUE: TypeEngine[Any] = JsonValue()


def _id_key() -> Column[int]:
    return Column("id", BIG_ID, primary_key=True, autoincrement=True)


def _required(name: str, type_: Any = Text, *foreign_key: ForeignKey, **options: Any) -> Column[Any]:
    return Column(name, type_, *foreign_key, nullable=False, **options)


def _optional(name: str, type_: Any = Text, *foreign_key: ForeignKey, **options: Any) -> Column[Any]:
    return Column(name, type_, *foreign_key, nullable=True, **options)


def _millis(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False)


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, default=False, server_default=text("false"))


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, default=0, server_default=text("0"))


def _text_with_default(name: str, value: str) -> Column[str]:
    return Column(name, Text, nullable=False, default=value, server_default=text(f"'{value}'"))


def _metadata_column() -> Column[dict[str, Any]]:
    # ``metadata`` in SQL, ``meta`` in Python (``portal.c.meta``): SQLAlchemy owns the name.
    return Column("metadata", JSON_VALUE, key="meta", nullable=False, default=dict, server_default=text("'{}'"))


# ----- transport and reliability -----

as_txn = Table(
    # A homeserver transaction, recorded with its events so a repeat is recognised.
    "as_txn", metadata,
    _id_key(),
    _required("txn_id"),
    _required("fingerprint"),  # sha256 hex of the body: the same txnId with another body is another transaction
    _millis("received_at"),
    _required("event_count", Integer),
    UniqueConstraint("txn_id", "fingerprint", name="uq_as_txn_txn_fingerprint"),
    Index("ix_as_txn_received_at", "received_at"),
)

inbox_event = Table(
    # One event of a homeserver transaction, stored before the transaction is acknowledged.
    "inbox_event", metadata,
    _id_key(),
    _required("txn_id"),
    _required("seq", Integer),  # position inside its transaction
    _optional("event_id"),
    _optional("room_id"),
    _required("kind"),  # pdu | ephemeral | to_device | device_lists | otk_counts | fallback_keys
    # Rows with one queue key are handled in order: the room ID, or ``~{kind}`` without one.
    _required("queue_key"),
    _required("payload"),  # the event exactly as the homeserver sent it (JSON text)
    # accepted (to handle, or handled: the queue's inbox_cursor says) | failed | rejected
    _text_with_default("state", "accepted"),
    _count("attempts"),
    _optional("last_error"),
    _millis("received_at"),
    _optional("handled_at", BigInteger),
    # A plain unique constraint: NULLs (events without an ID) are distinct on both databases,
    # and INSERT ... ON CONFLICT (event_id) can name it.
    UniqueConstraint("event_id", name="uq_inbox_event_event_id"),
    # Pruning goes by arrival time, a column that never changes after the insert. There is no
    # index on state: handled rows are not updated (see inbox_cursor), and the start-up replay
    # reads an id range above the cursor floor.
    Index("ix_inbox_event_received_at", "received_at"),
)

inbox_cursor = Table(
    # How far the handling of each inbox queue got: every accepted row of ``queue_key`` with an id
    # up to ``done_through`` is handled. Handling is strictly ordered per queue, so one number per
    # queue records it, instead of an update of every handled row. The row with ``queue_key =
    # '*'`` is the floor: every row at or below it is handled, whatever its queue (the start-up
    # replay reads only above it).
    "inbox_cursor", metadata,
    Column("queue_key", Text, primary_key=True),
    _required("done_through", BigInteger),
)

outbox = Table(
    # One send toward Matrix or the remote network, retried until it succeeds or fails visibly.
    "outbox", metadata,
    _id_key(),
    _required("direction"),  # to_matrix | to_remote
    _optional("portal_id", BIG_ID, ForeignKey("portal.id", ondelete="CASCADE")),
    # Deterministic, so a retry reuses it (the Matrix txnId, or the remote dedup key).
    _required("idempotency_key", unique=True),
    _required("payload", JSON_VALUE),
    _text_with_default("state", "pending"),
    _count("attempts"),
    _optional("not_before", BigInteger),  # do not retry before this time (Retry-After or backoff)
    _optional("last_error"),
    _millis("created_at"),
    # The Matrix event the send became (None for what posts no event): the answer to an emit that
    # waits, also when the same event is emitted again after it was sent.
    _optional("event_id"),
    Index("ix_outbox_portal_id_state_id", "portal_id", "state", "id"),
)

job = Table(
    # Side work a connector queued (``ctx.jobs``): run in order per ``ordering_key``, retried with
    # backoff, kept until done or finally failed (see ``core/jobs.py``).
    "job", metadata,
    _id_key(),
    _required("network"),
    _required("kind"),
    _required("ordering_key"),
    # Set by the connector for work that must be queued once (one delivery per hook and event).
    _optional("unique_key"),
    _required("payload", JSON_VALUE),
    _text_with_default("state", "pending"),  # pending | done | failed (done rows are pruned after a while)
    _count("attempts"),
    # Milliseconds since the epoch before which the job is not tried again (backoff).
    _optional("next_attempt_at", BigInteger),
    _optional("last_error"),
    _millis("created_at"),
    _optional("finished_at", BigInteger),
    Index("ix_job_network_ordering_key_state_id", "network", "ordering_key", "state", "id"),
    Index("ix_job_state", "state"),
    UniqueConstraint("network", "unique_key"),
)

# ----- identities -----

matrix_user = Table(
    # A Matrix user of the bridge (a real person, not a ghost).
    "matrix_user", metadata,
    Column("user_id", Text, primary_key=True),
    _optional("management_room"),
    _optional("permission"),  # overrides the level the config gives: relay | user | admin
    _optional("double_puppet_token"),  # encrypted at rest
    _millis("created_at"),
)

remote_session = Table(
    # An identity on the remote network: the bridge bot, a virtual user, or a puppet login.
    "remote_session", metadata,
    Column("id", Text, primary_key=True),
    _required("network"),
    _required("kind"),  # bot | virtual | puppet
    # The Matrix user it belongs to; NULL for the bot.
    _optional("owner_user_id", Text, ForeignKey("matrix_user.user_id", ondelete="CASCADE")),
    _optional("remote_user_id"),
    _optional("remote_name"),
    _text_with_default("state", "UNCONFIGURED"),
    _optional("state_error"),
    _optional("credentials"),  # encrypted JSON
    _metadata_column(),
    _millis("created_at"),
    _optional("last_active_at", BigInteger),
    UniqueConstraint("network", "kind", "owner_user_id", "remote_user_id"),
    Index("ix_remote_session_owner_user_id", "owner_user_id"),
)

ghost = Table(
    # The Matrix user that stands for a remote user.
    "ghost", metadata,
    _id_key(),
    _required("network"),
    _required("remote_id"),
    _required("user_id", unique=True),
    _flag("registered"),
    _optional("name"),
    _flag("name_set"),
    _optional("avatar_id"),
    _optional("avatar_hash"),
    _optional("avatar_mxc"),
    _flag("avatar_set"),
    _flag("is_bot"),
    _metadata_column(),
    _optional("last_synced_at", BigInteger),
    UniqueConstraint("network", "remote_id"),
)

# ----- rooms -----

portal = Table(
    # A remote chat and the Matrix room bridged to it.
    "portal", metadata,
    _id_key(),
    _required("network"),
    _required("remote_id"),
    # The remote session that sees this chat, for per-session chats (DMs); '' when shared.
    Column("receiver", Text, nullable=False, default="", server_default=text("''")),
    _optional("room_id", unique=True),  # NULL until the Matrix room is created
    _text_with_default("room_type", "group"),  # dm | group | channel | space
    # portal (the bridge created the room) | plumbed (an existing Matrix room) | dm | alias | feed
    # (posts into a room that is not its portal: the room is in ``meta["feed_room"]``, ``room_id``
    # stays NULL)
    _text_with_default("origin", "portal"),
    _optional("relay_session_id", Text, ForeignKey("remote_session.id", ondelete="SET NULL")),
    _optional("other_user_id"),  # the remote counterpart of a DM
    _optional("parent_id", BIG_ID, ForeignKey("portal.id", ondelete="SET NULL")),
    _optional("name"),
    _optional("topic"),
    _optional("avatar_id"),
    _optional("avatar_mxc"),
    _flag("name_set"),
    _flag("topic_set"),
    _flag("avatar_set"),
    _flag("encrypted"),
    _count("bridge_info_version"),
    _optional("last_remote_cursor"),  # where forward catch-up resumes (a stream position or message ID)
    _metadata_column(),
    _millis("created_at"),
    UniqueConstraint("network", "remote_id", "receiver"),
    Index("ix_portal_relay_session_id", "relay_session_id"),
)

session_portal = Table(
    # Which remote sessions see which portal.
    "session_portal", metadata,
    _required("session_id", Text, ForeignKey("remote_session.id", ondelete="CASCADE")),
    _required("portal_id", BIG_ID, ForeignKey("portal.id", ondelete="CASCADE")),
    _flag("preferred"),
    _optional("last_read_ts", BigInteger),
    PrimaryKeyConstraint("session_id", "portal_id"),
    Index("ix_session_portal_portal_id", "portal_id"),
)

# ----- message mapping -----

message = Table(
    # A Matrix event and the remote message (part) it mirrors: for edits, redactions, replies.
    "message", metadata,
    _id_key(),
    _required("portal_id", BIG_ID, ForeignKey("portal.id", ondelete="CASCADE")),
    _required("remote_id"),
    Column("part_id", Text, nullable=False, default="", server_default=text("''")),
    _required("event_id", unique=True),
    _required("origin"),  # matrix | remote
    _required("sender_user_id"),
    _optional("sender_remote_id"),
    _optional("session_id"),  # the remote session that sent or received it
    _millis("ts"),
    _count("edit_count"),
    _optional("reply_to_remote_id"),
    _optional("reply_to_part_id"),
    _optional("thread_root_remote_id"),
    _optional("send_txn_id"),
    _metadata_column(),
    UniqueConstraint("portal_id", "remote_id", "part_id"),
    UniqueConstraint("portal_id", "send_txn_id"),
)

reaction = Table(
    # A reaction to a bridged message.
    "reaction", metadata,
    _id_key(),
    _required("message_id", BIG_ID, ForeignKey("message.id", ondelete="CASCADE")),
    _required("sender_remote_id"),
    _required("emoji_id"),
    _required("emoji"),
    _required("event_id", unique=True),
    _millis("ts"),
    UniqueConstraint("message_id", "sender_remote_id", "emoji_id"),
)

# ----- Matrix state the bridge remembers -----

room_state = Table(
    # Matrix room state the bridge needs often (power levels, encryption, ...).
    "room_state", metadata,
    Column("room_id", Text, primary_key=True),
    _optional("power_levels", JSON_VALUE),
    _optional("encryption", JSON_VALUE),
    _optional("create_event", JSON_VALUE),
    _optional("join_rules", JSON_VALUE),
    _flag("members_fetched"),
)

room_member = Table(
    # A Matrix user's membership of a room, as the bridge last knew it.
    "room_member", metadata,
    _required("room_id"),
    _required("user_id"),
    _required("membership"),
    _optional("displayname"),
    _optional("avatar_url"),
    PrimaryKeyConstraint("room_id", "user_id"),
)

registered_user = Table(
    # A user the bridge has registered on the homeserver (so it never registers it twice).
    "registered_user", metadata,
    Column("user_id", Text, primary_key=True),
    _millis("registered_at"),
)

# ----- control plane -----

kv = Table(
    # Small JSON values per network (e.g. the IRC network's CASEMAPPING); some expire.
    "kv", metadata,
    _required("network"),
    _required("key"),
    _required("value", JSON_VALUE),
    _optional("expires_at", BigInteger),  # Unix ms after which the value is gone (None: kept until deleted)
    PrimaryKeyConstraint("network", "key"),
    Index("ix_kv_expires_at", "expires_at"),
)

__all__ = [
    "BIG_ID",
    "JSON_VALUE",
    "NAMING_CONVENTION",
    "as_txn",
    "ghost",
    "inbox_cursor",
    "inbox_event",
    "job",
    "kv",
    "matrix_user",
    "message",
    "metadata",
    "outbox",
    "portal",
    "reaction",
    "registered_user",
    "remote_session",
    "room_member",
    "room_state",
    "session_portal",
]
