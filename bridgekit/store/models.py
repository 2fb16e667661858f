"""ORM classes over bridgekit's tables (``tables.py``), for code that wants sessions and objects.

The running bridge does not import this module: its stores use the Core tables, and the ORM costs
6-7 MB resident (issue 16). Tests, migrations' helpers and connectors that use
``ctx.database.write_session()`` may; each class is mapped onto the table of the same name, so
``Portal.__table__ is tables.portal`` and ``Portal.meta`` is the ``metadata`` column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from bridgekit.store import tables
from bridgekit.store.tables import BIG_ID, JSON_VALUE, NAMING_CONVENTION, metadata


class Base(DeclarativeBase):
    metadata = metadata


class AsTxn(Base):
    """A homeserver transaction, recorded with its events so a repeat is recognised."""

    __table__ = tables.as_txn

    id: Mapped[int]
    txn_id: Mapped[str]
    fingerprint: Mapped[str]
    received_at: Mapped[int]
    event_count: Mapped[int]


class InboxEvent(Base):
    """One event of a homeserver transaction, stored before the transaction is acknowledged."""

    __table__ = tables.inbox_event

    id: Mapped[int]
    txn_id: Mapped[str]
    seq: Mapped[int]
    event_id: Mapped[str | None]
    room_id: Mapped[str | None]
    kind: Mapped[str]
    queue_key: Mapped[str]
    payload: Mapped[str]
    state: Mapped[str]
    attempts: Mapped[int]
    last_error: Mapped[str | None]
    received_at: Mapped[int]
    handled_at: Mapped[int | None]


class InboxCursor(Base):
    """How far the handling of each inbox queue got: every accepted row of ``queue_key`` with an"""

    __table__ = tables.inbox_cursor

    queue_key: Mapped[str]
    done_through: Mapped[int]


class OutboxItem(Base):
    """One send toward Matrix or the remote network, retried until it succeeds or fails visibly."""

    __table__ = tables.outbox

    id: Mapped[int]
    direction: Mapped[str]
    portal_id: Mapped[int | None]
    idempotency_key: Mapped[str]
    payload: Mapped[Any]
    state: Mapped[str]
    attempts: Mapped[int]
    not_before: Mapped[int | None]
    last_error: Mapped[str | None]
    created_at: Mapped[int]
    event_id: Mapped[str | None]


class Job(Base):
    """Side work a connector queued (``ctx.jobs``): run in order per ``ordering_key``, retried"""

    __table__ = tables.job

    id: Mapped[int]
    network: Mapped[str]
    kind: Mapped[str]
    ordering_key: Mapped[str]
    unique_key: Mapped[str | None]
    payload: Mapped[Any]
    state: Mapped[str]
    attempts: Mapped[int]
    next_attempt_at: Mapped[int | None]
    last_error: Mapped[str | None]
    created_at: Mapped[int]
    finished_at: Mapped[int | None]


class MatrixUser(Base):
    """A Matrix user of the bridge (a real person, not a ghost)."""

    __table__ = tables.matrix_user

    user_id: Mapped[str]
    management_room: Mapped[str | None]
    permission: Mapped[str | None]
    double_puppet_token: Mapped[str | None]
    created_at: Mapped[int]


class RemoteSession(Base):
    """An identity on the remote network: the bridge bot, a virtual user, or a puppet login."""

    __table__ = tables.remote_session

    id: Mapped[str]
    network: Mapped[str]
    kind: Mapped[str]
    owner_user_id: Mapped[str | None]
    remote_user_id: Mapped[str | None]
    remote_name: Mapped[str | None]
    state: Mapped[str]
    state_error: Mapped[str | None]
    credentials: Mapped[str | None]
    meta: Mapped[dict[str, Any]]
    created_at: Mapped[int]
    last_active_at: Mapped[int | None]


class Ghost(Base):
    """The Matrix user that stands for a remote user."""

    __table__ = tables.ghost

    id: Mapped[int]
    network: Mapped[str]
    remote_id: Mapped[str]
    user_id: Mapped[str]
    registered: Mapped[bool]
    name: Mapped[str | None]
    name_set: Mapped[bool]
    avatar_id: Mapped[str | None]
    avatar_hash: Mapped[str | None]
    avatar_mxc: Mapped[str | None]
    avatar_set: Mapped[bool]
    is_bot: Mapped[bool]
    meta: Mapped[dict[str, Any]]
    last_synced_at: Mapped[int | None]


class Portal(Base):
    """A remote chat and the Matrix room bridged to it."""

    __table__ = tables.portal

    id: Mapped[int]
    network: Mapped[str]
    remote_id: Mapped[str]
    receiver: Mapped[str]
    room_id: Mapped[str | None]
    room_type: Mapped[str]
    origin: Mapped[str]
    relay_session_id: Mapped[str | None]
    other_user_id: Mapped[str | None]
    parent_id: Mapped[int | None]
    name: Mapped[str | None]
    topic: Mapped[str | None]
    avatar_id: Mapped[str | None]
    avatar_mxc: Mapped[str | None]
    name_set: Mapped[bool]
    topic_set: Mapped[bool]
    avatar_set: Mapped[bool]
    encrypted: Mapped[bool]
    bridge_info_version: Mapped[int]
    last_remote_cursor: Mapped[str | None]
    meta: Mapped[dict[str, Any]]
    created_at: Mapped[int]


class SessionPortal(Base):
    """Which remote sessions see which portal."""

    __table__ = tables.session_portal

    session_id: Mapped[str]
    portal_id: Mapped[int]
    preferred: Mapped[bool]
    last_read_ts: Mapped[int | None]


class Message(Base):
    """A Matrix event and the remote message (part) it mirrors: for edits, redactions, replies."""

    __table__ = tables.message

    id: Mapped[int]
    portal_id: Mapped[int]
    remote_id: Mapped[str]
    part_id: Mapped[str]
    event_id: Mapped[str]
    origin: Mapped[str]
    sender_user_id: Mapped[str]
    sender_remote_id: Mapped[str | None]
    session_id: Mapped[str | None]
    ts: Mapped[int]
    edit_count: Mapped[int]
    reply_to_remote_id: Mapped[str | None]
    reply_to_part_id: Mapped[str | None]
    thread_root_remote_id: Mapped[str | None]
    send_txn_id: Mapped[str | None]
    meta: Mapped[dict[str, Any]]


class Reaction(Base):
    """A reaction to a bridged message."""

    __table__ = tables.reaction

    id: Mapped[int]
    message_id: Mapped[int]
    sender_remote_id: Mapped[str]
    emoji_id: Mapped[str]
    emoji: Mapped[str]
    event_id: Mapped[str]
    ts: Mapped[int]


class RoomState(Base):
    """Matrix room state the bridge needs often (power levels, encryption, ...)."""

    __table__ = tables.room_state

    room_id: Mapped[str]
    power_levels: Mapped[Any]
    encryption: Mapped[Any]
    create_event: Mapped[Any]
    join_rules: Mapped[Any]
    members_fetched: Mapped[bool]


class RoomMember(Base):
    """A Matrix user's membership of a room, as the bridge last knew it."""

    __table__ = tables.room_member

    room_id: Mapped[str]
    user_id: Mapped[str]
    membership: Mapped[str]
    displayname: Mapped[str | None]
    avatar_url: Mapped[str | None]


class RegisteredUser(Base):
    """A user the bridge has registered on the homeserver (so it never registers it twice)."""

    __table__ = tables.registered_user

    user_id: Mapped[str]
    registered_at: Mapped[int]


class KeyValue(Base):
    """Small JSON values per network (e.g. the IRC network's CASEMAPPING); some expire."""

    __table__ = tables.kv

    network: Mapped[str]
    key: Mapped[str]
    value: Mapped[Any]
    expires_at: Mapped[int | None]


__all__ = [
    "BIG_ID",
    "JSON_VALUE",
    "NAMING_CONVENTION",
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
