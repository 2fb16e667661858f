"""The tables of bridgekit, as typed SQLAlchemy models.

Conventions (see DESIGN §4 and research/framework.md §c.4):

- Matrix and remote IDs are text; times are BIGINT milliseconds since the epoch.
- Surrogate integer keys with the natural key as a UNIQUE constraint, so foreign keys stay small
  and re-keying a portal touches one row.
- Every row that belongs to a network has a ``network`` column: one process can host several
  connectors.
- Connector data goes into the JSON ``metadata`` column (``meta`` in Python, because
  ``metadata`` is taken by SQLAlchemy), never into new core columns.

The migration in ``migrations/versions`` creates exactly these tables; a test keeps the two equal.
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column
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

IdKey = Annotated[int, mapped_column(BIG_ID, primary_key=True, autoincrement=True)]
Millis = Annotated[int, mapped_column(BigInteger)]
Flag = Annotated[bool, mapped_column(Boolean, default=False, server_default=text("false"))]
Pending = Annotated[str, mapped_column(Text, default="pending", server_default=text("'pending'"))]
Count = Annotated[int, mapped_column(Integer, default=0, server_default=text("0"))]


def _metadata_column() -> MappedColumn[dict[str, Any]]:
    # ``metadata`` in SQL, ``meta`` in Python for the ORM and Core alike (``Portal.meta``,
    # ``portal.c.meta``): SQLAlchemy owns the name ``metadata``. Not an Annotated alias like the
    # others, because an alias cannot carry a column name.
    return mapped_column(
        "metadata", JSON_VALUE, key="meta", default=dict, server_default=text("'{}'")
    )


class Base(DeclarativeBase):
    metadata = metadata


# ----- transport and reliability -----


class AsTxn(Base):
    """A homeserver transaction, recorded with its events so a repeat is recognised."""

    __tablename__ = "as_txn"
    __table_args__ = (
        UniqueConstraint("txn_id", "fingerprint", name="uq_as_txn_txn_fingerprint"),
        Index("ix_as_txn_received_at", "received_at"),
    )

    id: Mapped[IdKey]
    txn_id: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text)
    """sha256 hex of the body: the same txnId with another body is another transaction."""
    received_at: Mapped[Millis]
    event_count: Mapped[int] = mapped_column(Integer)


class InboxEvent(Base):
    """One event of a homeserver transaction, stored before the transaction is acknowledged."""

    __tablename__ = "inbox_event"
    __table_args__ = (
        # A plain unique constraint: NULLs (events without an ID) are distinct on both
        # databases, and INSERT ... ON CONFLICT (event_id) can name it.
        UniqueConstraint("event_id", name="uq_inbox_event_event_id"),
        # Pruning goes by arrival time, a column that never changes after the insert. There is
        # no index on state: handled rows are not updated (see InboxCursor), and the start-up
        # replay reads an id range above the cursor floor.
        Index("ix_inbox_event_received_at", "received_at"),
    )

    id: Mapped[IdKey]
    txn_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    """Position inside its transaction."""
    event_id: Mapped[str | None] = mapped_column(Text)
    room_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    """pdu | ephemeral | to_device | device_lists | otk_counts | fallback_keys"""
    queue_key: Mapped[str] = mapped_column(Text)
    """Rows with one queue key are handled in order: the room ID, or ``~{kind}`` without one."""
    payload: Mapped[str] = mapped_column(Text)
    """The event exactly as the homeserver sent it (JSON text)."""
    state: Mapped[str] = mapped_column(Text, default="accepted", server_default=text("'accepted'"))
    """accepted (to handle, or handled: the queue's InboxCursor says) | failed | rejected"""
    attempts: Mapped[Count]
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[Millis]
    handled_at: Mapped[int | None] = mapped_column(BigInteger)


class InboxCursor(Base):
    """How far the handling of each inbox queue got: every accepted row of ``queue_key`` with an
    id up to ``done_through`` is handled.

    Handling is strictly ordered per queue, so one number per queue records it, instead of an
    update of every handled row. The row with ``queue_key = '*'`` is the floor: every row at or
    below it is handled, whatever its queue (the start-up replay reads only above it).
    """

    __tablename__ = "inbox_cursor"

    queue_key: Mapped[str] = mapped_column(Text, primary_key=True)
    done_through: Mapped[int] = mapped_column(BigInteger)


class OutboxItem(Base):
    """One send toward Matrix or the remote network, retried until it succeeds or fails visibly."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_portal_id_state_id", "portal_id", "state", "id"),)

    id: Mapped[IdKey]
    direction: Mapped[str] = mapped_column(Text)
    """to_matrix | to_remote"""
    portal_id: Mapped[int | None] = mapped_column(
        BIG_ID, ForeignKey("portal.id", ondelete="CASCADE")
    )
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    """Deterministic, so a retry reuses it (the Matrix txnId, or the remote dedup key)."""
    payload: Mapped[Any] = mapped_column(JSON_VALUE, nullable=False)
    state: Mapped[Pending]
    attempts: Mapped[Count]
    not_before: Mapped[int | None] = mapped_column(BigInteger)
    """Do not retry before this time (Retry-After or backoff)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Millis]
    event_id: Mapped[str | None] = mapped_column(Text)
    """The Matrix event the send became (None for what posts no event): the answer to an emit
    that waits, also when the same event is emitted again after it was sent."""


class Job(Base):
    """Side work a connector queued (``ctx.jobs``): run in order per ``ordering_key``, retried
    with backoff, kept until done or finally failed (see ``core/jobs.py``)."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_network_ordering_key_state_id", "network", "ordering_key", "state", "id"),
        Index("ix_job_state", "state"),
        UniqueConstraint("network", "unique_key"),
    )

    id: Mapped[IdKey]
    network: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    ordering_key: Mapped[str] = mapped_column(Text)
    unique_key: Mapped[str | None] = mapped_column(Text)
    """Set by the connector for work that must be queued once (one delivery per hook and event)."""
    payload: Mapped[Any] = mapped_column(JSON_VALUE, nullable=False)
    state: Mapped[Pending]
    """pending | done | failed (done rows are pruned after a while)"""
    attempts: Mapped[Count]
    next_attempt_at: Mapped[int | None] = mapped_column(BigInteger)
    """Milliseconds since the epoch before which the job is not tried again (backoff)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Millis]
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


# ----- identities -----


class MatrixUser(Base):
    """A Matrix user of the bridge (a real person, not a ghost)."""

    __tablename__ = "matrix_user"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    management_room: Mapped[str | None] = mapped_column(Text)
    permission: Mapped[str | None] = mapped_column(Text)
    """Overrides the level the config gives: relay | user | admin."""
    double_puppet_token: Mapped[str | None] = mapped_column(Text)
    """Encrypted at rest."""
    created_at: Mapped[Millis]


class RemoteSession(Base):
    """An identity on the remote network: the bridge bot, a virtual user, or a puppet login."""

    __tablename__ = "remote_session"
    __table_args__ = (
        UniqueConstraint("network", "kind", "owner_user_id", "remote_user_id"),
        Index("ix_remote_session_owner_user_id", "owner_user_id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    network: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    """bot | virtual | puppet"""
    owner_user_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("matrix_user.user_id", ondelete="CASCADE")
    )
    """The Matrix user it belongs to; NULL for the bot."""
    remote_user_id: Mapped[str | None] = mapped_column(Text)
    remote_name: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(
        Text, default="UNCONFIGURED", server_default=text("'UNCONFIGURED'")
    )
    state_error: Mapped[str | None] = mapped_column(Text)
    credentials: Mapped[str | None] = mapped_column(Text)
    """Encrypted JSON."""
    meta: Mapped[dict[str, Any]] = _metadata_column()
    created_at: Mapped[Millis]
    last_active_at: Mapped[int | None] = mapped_column(BigInteger)


class Ghost(Base):
    """The Matrix user that stands for a remote user."""

    __tablename__ = "ghost"
    __table_args__ = (UniqueConstraint("network", "remote_id"),)

    id: Mapped[IdKey]
    network: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text, unique=True)
    registered: Mapped[Flag]
    name: Mapped[str | None] = mapped_column(Text)
    name_set: Mapped[Flag]
    avatar_id: Mapped[str | None] = mapped_column(Text)
    avatar_hash: Mapped[str | None] = mapped_column(Text)
    avatar_mxc: Mapped[str | None] = mapped_column(Text)
    avatar_set: Mapped[Flag]
    is_bot: Mapped[Flag]
    meta: Mapped[dict[str, Any]] = _metadata_column()
    last_synced_at: Mapped[int | None] = mapped_column(BigInteger)


# ----- rooms -----


class Portal(Base):
    """A remote chat and the Matrix room bridged to it."""

    __tablename__ = "portal"
    __table_args__ = (
        UniqueConstraint("network", "remote_id", "receiver"),
        Index("ix_portal_relay_session_id", "relay_session_id"),
    )

    id: Mapped[IdKey]
    network: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str] = mapped_column(Text)
    receiver: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    """The remote session that sees this chat, for per-session chats (DMs); '' when shared."""
    room_id: Mapped[str | None] = mapped_column(Text, unique=True)
    """NULL until the Matrix room is created."""
    room_type: Mapped[str] = mapped_column(Text, default="group", server_default=text("'group'"))
    """dm | group | channel | space"""
    origin: Mapped[str] = mapped_column(Text, default="portal", server_default=text("'portal'"))
    """portal (the bridge created the room) | plumbed (an existing Matrix room) | dm | alias | feed (posts into
    a room that is not its portal: the room is in ``meta["feed_room"]``, ``room_id`` stays NULL)"""
    relay_session_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("remote_session.id", ondelete="SET NULL")
    )
    other_user_id: Mapped[str | None] = mapped_column(Text)
    """The remote counterpart of a DM."""
    parent_id: Mapped[int | None] = mapped_column(
        BIG_ID, ForeignKey("portal.id", ondelete="SET NULL")
    )
    name: Mapped[str | None] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(Text)
    avatar_id: Mapped[str | None] = mapped_column(Text)
    avatar_mxc: Mapped[str | None] = mapped_column(Text)
    name_set: Mapped[Flag]
    topic_set: Mapped[Flag]
    avatar_set: Mapped[Flag]
    encrypted: Mapped[Flag]
    bridge_info_version: Mapped[Count]
    last_remote_cursor: Mapped[str | None] = mapped_column(Text)
    """Where forward catch-up resumes (a stream position or message ID)."""
    meta: Mapped[dict[str, Any]] = _metadata_column()
    created_at: Mapped[Millis]


class SessionPortal(Base):
    """Which remote sessions see which portal."""

    __tablename__ = "session_portal"
    __table_args__ = (
        PrimaryKeyConstraint("session_id", "portal_id"),
        Index("ix_session_portal_portal_id", "portal_id"),
    )

    session_id: Mapped[str] = mapped_column(
        Text, ForeignKey("remote_session.id", ondelete="CASCADE")
    )
    portal_id: Mapped[int] = mapped_column(BIG_ID, ForeignKey("portal.id", ondelete="CASCADE"))
    preferred: Mapped[Flag]
    last_read_ts: Mapped[int | None] = mapped_column(BigInteger)


# ----- message mapping -----


class Message(Base):
    """A Matrix event and the remote message (part) it mirrors: for edits, redactions, replies."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("portal_id", "remote_id", "part_id"),
        UniqueConstraint("portal_id", "send_txn_id"),
    )

    id: Mapped[IdKey]
    portal_id: Mapped[int] = mapped_column(BIG_ID, ForeignKey("portal.id", ondelete="CASCADE"))
    remote_id: Mapped[str] = mapped_column(Text)
    part_id: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    origin: Mapped[str] = mapped_column(Text)
    """matrix | remote"""
    sender_user_id: Mapped[str] = mapped_column(Text)
    sender_remote_id: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(Text)
    """The remote session that sent or received it."""
    ts: Mapped[Millis]
    edit_count: Mapped[Count]
    reply_to_remote_id: Mapped[str | None] = mapped_column(Text)
    reply_to_part_id: Mapped[str | None] = mapped_column(Text)
    thread_root_remote_id: Mapped[str | None] = mapped_column(Text)
    send_txn_id: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = _metadata_column()


class Reaction(Base):
    """A reaction to a bridged message."""

    __tablename__ = "reaction"
    __table_args__ = (UniqueConstraint("message_id", "sender_remote_id", "emoji_id"),)

    id: Mapped[IdKey]
    message_id: Mapped[int] = mapped_column(BIG_ID, ForeignKey("message.id", ondelete="CASCADE"))
    sender_remote_id: Mapped[str] = mapped_column(Text)
    emoji_id: Mapped[str] = mapped_column(Text)
    emoji: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    ts: Mapped[Millis]


# ----- Matrix state the bridge remembers -----


class RoomState(Base):
    """Matrix room state the bridge needs often (power levels, encryption, ...)."""

    __tablename__ = "room_state"

    room_id: Mapped[str] = mapped_column(Text, primary_key=True)
    power_levels: Mapped[Any] = mapped_column(JSON_VALUE, nullable=True)
    encryption: Mapped[Any] = mapped_column(JSON_VALUE, nullable=True)
    create_event: Mapped[Any] = mapped_column(JSON_VALUE, nullable=True)
    join_rules: Mapped[Any] = mapped_column(JSON_VALUE, nullable=True)
    members_fetched: Mapped[Flag]


class RoomMember(Base):
    """A Matrix user's membership of a room, as the bridge last knew it."""

    __tablename__ = "room_member"
    __table_args__ = (PrimaryKeyConstraint("room_id", "user_id"),)

    room_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    membership: Mapped[str] = mapped_column(Text)
    displayname: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)


class RegisteredUser(Base):
    """A user the bridge has registered on the homeserver (so it never registers it twice)."""

    __tablename__ = "registered_user"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    registered_at: Mapped[Millis]


# ----- control plane -----


class KeyValue(Base):
    """Small JSON values per network (e.g. the IRC network's CASEMAPPING); some expire."""

    __tablename__ = "kv"
    __table_args__ = (PrimaryKeyConstraint("network", "key"), Index("ix_kv_expires_at", "expires_at"))

    network: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[Any] = mapped_column(JSON_VALUE, nullable=False)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Unix ms after which the value is gone (None: kept until deleted)."""


__all__ = [
    "AsTxn",
    "Base",
    "Ghost",
    "InboxCursor",
    "InboxEvent",
    "Job",
    "KeyValue",
    "MatrixUser",
    "Message",
    "OutboxItem",
    "Portal",
    "Reaction",
    "RegisteredUser",
    "RemoteSession",
    "RoomMember",
    "RoomState",
    "SessionPortal",
    "metadata",
]
