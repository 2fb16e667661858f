"""The webhook bridge's own tables, in the bridge's database (``ctx.database``).

Hooks, their ghosts and the requests they accepted (for Idempotency-Key answers and replay
refusal); Alembic revisions in ``migrations/``, the first being the schema ``webhook.db`` had
last (less its delivery and private-room tables: outbound deliveries are jobs of the framework's
queue, and secrets go to the user's management room). Rows are ORM models, read and written in
short transactions by ``store.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bridgekit import ConnectorTables

ACTIVE = "active"
SUSPENDED = "suspended"


class Base(DeclarativeBase):
    pass


class _OwnedHook:
    """What inbound and outbound hooks share: their room, who made them, and whether they are active."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    creator: Mapped[str] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    """``active``, or ``suspended`` once its creator left the room (until a room admin adopts it)."""
    suspended_reason: Mapped[str | None] = mapped_column(Text)


class Hook(_OwnedHook, Base):
    """An inbound hook: posts into ``room_id``."""

    __tablename__ = "webhook_hook"
    name: Mapped[str] = mapped_column(String(100))
    scheme: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    sealed_secret: Mapped[str | None] = mapped_column(Text)
    identity: Mapped[str] = mapped_column(String(16))


class InboundMessage(Base):
    """One accepted request: its message, whether it is in the room, and its Idempotency-Key."""

    __tablename__ = "webhook_inbound"
    __table_args__ = (
        UniqueConstraint("hook_id", "idempotency_key"),
        # GitHub signs the body only: a signed body is accepted once per idempotency window.
        Index("ix_webhook_inbound_body_digest", "hook_id", "body_digest", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hook_id: Mapped[str] = mapped_column(String(32), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The :class:`~bridges.webhook.translate.HookMessage` as JSON, until it is in the room."""
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    body_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the body, for schemes that sign the body alone (GitHub); else None."""


class HookGhost(Base):
    """A sender name of a virtual-user hook: its ghost, and the picture it was given."""

    __tablename__ = "webhook_ghost"
    hook_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    displayname: Mapped[str | None] = mapped_column(String(255))
    avatar_source: Mapped[str | None] = mapped_column(Text)
    """The ``avatar_url`` the sender gave, once fetched; ``avatar_mxc`` is what it became."""
    avatar_mxc: Mapped[str | None] = mapped_column(Text)


class OutboundHook(_OwnedHook, Base):
    """A URL that gets the room's messages."""

    __tablename__ = "webhook_outbound"
    url: Mapped[str] = mapped_column(Text)
    sealed_secret: Mapped[str] = mapped_column(Text)


WEBHOOK_TABLES = ConnectorTables(
    schema="webhook", migrations=Path(__file__).with_name("migrations"), metadata=Base.metadata
)

__all__ = ["ACTIVE", "SUSPENDED", "WEBHOOK_TABLES", "Base", "Hook", "HookGhost", "InboundMessage", "OutboundHook"]
