"""The webhook bridge's own tables: hooks, remembered requests, ghosts and outbound deliveries.

bridgekit has no storage API for connectors yet, so the connector keeps a small database of its
own (``database`` in its settings), versioned and migrated by ``schema.py``. Writes are
serialised by a lock: SQLite has one writer, and taking turns here is cheaper than "database is
locked" retries. Every function opens its own short session; rows come back detached
(``expire_on_commit=False``), never lazily loaded.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from bridges.webhook.schema import SCHEMA_VERSION, VERSION_TABLE, Base, migrate
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row, outbound_row

log = logging.getLogger(__name__)

ACTIVE = "active"
SUSPENDED = "suspended"


class SchemaVersion(Base):
    """The schema version the database is at (one row; see schema.py)."""

    __tablename__ = VERSION_TABLE
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Hook(Base):
    """An inbound hook: posts into ``room_id``."""

    __tablename__ = "webhook_hook"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(100))
    creator: Mapped[str] = mapped_column(String(255))
    scheme: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    sealed_secret: Mapped[str | None] = mapped_column(Text)
    identity: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    """``active``, or ``suspended`` once its creator left the room (until a room admin adopts it)."""
    suspended_reason: Mapped[str | None] = mapped_column(Text)


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
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    body_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the body, for schemes that sign the body alone (GitHub); else None."""


class HookGhost(Base):
    """A sender name of a virtual-user hook and the ghost that speaks for it."""

    __tablename__ = "webhook_ghost"
    hook_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    displayname: Mapped[str | None] = mapped_column(String(255))
    avatar_source: Mapped[str | None] = mapped_column(Text)


class OutboundHook(Base):
    """A URL that gets the room's messages."""

    __tablename__ = "webhook_outbound"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    url: Mapped[str] = mapped_column(Text)
    sealed_secret: Mapped[str] = mapped_column(Text)
    creator: Mapped[str] = mapped_column(String(255))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE, server_default=ACTIVE)
    suspended_reason: Mapped[str | None] = mapped_column(Text)


class OutboundDelivery(Base):
    """One Matrix event on its way to one outbound hook (the ``id`` is the delivery ID header)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("hook_id", "event_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hook_id: Mapped[str] = mapped_column(String(32), index=True)
    event_id: Mapped[str] = mapped_column(String(255))
    room_id: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class PrivateRoom(Base):
    """Where secrets for a user go: their direct chat with the bot."""

    __tablename__ = "webhook_private_room"
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))


class Added(enum.Enum):
    """What :meth:`WebhookStore.add_inbound` did with a request."""

    NEW = "new"
    SAME_KEY = "same_key"
    """Its Idempotency-Key (or GitHub delivery ID) was accepted before: the earlier answer applies."""
    SAME_BODY = "same_body"
    """Its body, signed alone, was accepted before under another key: a replay."""


Row = TypeVar("Row", bound=Base)


class WebhookStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str) -> WebhookStore:
        engine = create_async_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        async with engine.begin() as connection:
            before = await connection.run_sync(migrate)
        if 0 <= before < SCHEMA_VERSION:
            log.info("webhook database migrated from schema version %d to %d", before, SCHEMA_VERSION)
        return cls(engine)

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    # -- inbound hooks -------------------------------------------------------------------------

    async def add_hook(self, hook: Hook) -> None:
        async with self._write() as session:
            session.add(hook)

    async def hook(self, hook_id: str) -> Hook | None:
        async with self._read() as session:
            return await session.get(Hook, hook_id)

    async def hooks_in_room(self, room_id: str) -> Sequence[Hook]:
        async with self._read() as session:
            return (await session.scalars(select(Hook).where(Hook.room_id == room_id).order_by(Hook.created_ms))).all()

    async def update_hook(self, hook_id: str, **values: Any) -> Hook | None:
        return await self._update(Hook, hook_id, values)

    async def _update(self, model: type[Row], key: str, values: dict[str, Any]) -> Row | None:
        """Set ``values`` on the row of ``model`` with primary key ``key``; the row, or None."""
        async with self._write() as session:
            row = await session.get(model, key)
            if row is not None:
                for column, value in values.items():
                    setattr(row, column, value)
            return row

    async def suspend_creator(self, room_id: str, creator: str, reason: str) -> tuple[list[Hook], list[OutboundHook]]:
        """Suspend the active hooks ``creator`` made in ``room_id`` (they left it); returns them.

        Deliveries still waiting for those outbound hooks are dropped in the same transaction:
        nothing queued for a suspended hook goes out."""
        async with self._write() as session:
            hooks = list((await session.scalars(select(Hook).where(
                Hook.room_id == room_id, Hook.creator == creator, Hook.status == ACTIVE))).all())
            outbound = list((await session.scalars(select(OutboundHook).where(
                OutboundHook.room_id == room_id, OutboundHook.creator == creator, OutboundHook.status == ACTIVE,
            ))).all())
            suspended: list[Hook | OutboundHook] = [*hooks, *outbound]
            for hook in suspended:
                hook.status, hook.suspended_reason = SUSPENDED, reason
            if outbound:
                await session.execute(
                    update(OutboundDelivery)
                    .where(OutboundDelivery.hook_id.in_([hook.id for hook in outbound]),
                           OutboundDelivery.state == "pending")
                    .values(state="dropped", last_error=f"the outbound hook was suspended: {reason}")
                )
            return hooks, outbound

    async def active_creators(self) -> list[tuple[str, str]]:
        """(room, creator) of every active hook, inbound or outbound, once each."""
        async with self._read() as session:
            pairs: set[tuple[str, str]] = set()
            for table in (Hook, OutboundHook):
                rows = await session.execute(select(table.room_id, table.creator).where(table.status == ACTIVE))
                pairs.update((room_id, creator) for room_id, creator in rows)
        return sorted(pairs)

    async def reseal_secrets(self, box: SecretBox) -> int:
        """Write every signing secret not sealed with the current key (or in the old format)
        again with it; returns how many. A secret no configured key opens is left as it is."""
        done = 0
        async with self._write() as session:
            rows: list[tuple[Hook | OutboundHook, str]] = [
                *((hook, inbound_row(hook.id)) for hook in await session.scalars(select(Hook))),
                *((hook, outbound_row(hook.id)) for hook in await session.scalars(select(OutboundHook))),
            ]
            for row, bound_to in rows:
                if row.sealed_secret is None or not box.needs_reseal(row.sealed_secret):
                    continue
                try:
                    row.sealed_secret = box.reseal(row.sealed_secret, row=bound_to)
                except SecretBoxUnavailable as error:
                    log.error("the signing secret of %s stays as it is: %s", bound_to, error)
                    continue
                done += 1
        return done

    async def remove_hook(self, hook_id: str) -> None:
        async with self._write() as session:
            await session.execute(delete(Hook).where(Hook.id == hook_id))
            await session.execute(delete(HookGhost).where(HookGhost.hook_id == hook_id))

    # -- inbound messages ------------------------------------------------------------------------

    async def add_inbound(
        self, hook_id: str, key: str | None, room_id: str, message: dict[str, Any], now_ms: int,
        *, body_digest: str | None = None,
    ) -> tuple[InboundMessage, Added]:
        """Store a request's message: (row, NEW); for a known key or (with ``body_digest``) a body
        accepted before, the earlier row and which of the two it was."""
        row = InboundMessage(
            hook_id=hook_id, idempotency_key=key, room_id=room_id, message=message, state="pending",
            attempts=0, created_ms=now_ms, body_digest=body_digest,
        )
        try:
            async with self._write() as session:
                session.add(row)
            return row, Added.NEW
        except IntegrityError:
            async with self._read() as session:
                for column, value, outcome in ((InboundMessage.idempotency_key, key, Added.SAME_KEY),
                                               (InboundMessage.body_digest, body_digest, Added.SAME_BODY)):
                    if value is None:
                        continue
                    earlier = await session.scalar(
                        select(InboundMessage).where(InboundMessage.hook_id == hook_id, column == value)
                    )
                    if earlier is not None:
                        return earlier, outcome
            raise  # pruned in between: cannot happen within the retention window

    async def inbound(self, row_id: int) -> InboundMessage | None:
        async with self._read() as session:
            return await session.get(InboundMessage, row_id)

    async def finish_inbound(self, row_id: int, *, state: str, event_id: str | None, attempts: int) -> None:
        async with self._write() as session:
            row = await session.get(InboundMessage, row_id)
            if row is not None:
                row.state, row.event_id, row.attempts = state, event_id, attempts

    async def pending_inbound(self) -> Sequence[InboundMessage]:
        async with self._read() as session:
            query = select(InboundMessage).where(InboundMessage.state == "pending").order_by(InboundMessage.id)
            return (await session.scalars(query)).all()

    async def prune_inbound(self, before_ms: int) -> int:
        """Forget finished requests older than the idempotency window."""
        async with self._write() as session:
            result = await session.execute(
                delete(InboundMessage).where(InboundMessage.created_ms < before_ms, InboundMessage.state != "pending")
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # -- ghosts ----------------------------------------------------------------------------------

    async def ghost(self, hook_id: str, name_key: str) -> HookGhost | None:
        async with self._read() as session:
            return await session.get(HookGhost, (hook_id, name_key))

    async def ghost_count(self, hook_id: str) -> int:
        async with self._read() as session:
            query = select(func.count()).select_from(HookGhost).where(HookGhost.hook_id == hook_id)
            count = await session.scalar(query)
            return int(count or 0)

    async def save_ghost(self, ghost: HookGhost) -> None:
        async with self._write() as session:
            await session.merge(ghost)

    # -- outbound hooks and deliveries --------------------------------------------------------

    async def add_outbound(self, hook: OutboundHook) -> None:
        async with self._write() as session:
            session.add(hook)

    async def outbound(self, hook_id: str) -> OutboundHook | None:
        async with self._read() as session:
            return await session.get(OutboundHook, hook_id)

    async def outbound_in_room(self, room_id: str, *, active_only: bool = False) -> Sequence[OutboundHook]:
        async with self._read() as session:
            query = select(OutboundHook).where(OutboundHook.room_id == room_id).order_by(OutboundHook.created_ms)
            if active_only:
                query = query.where(OutboundHook.status == ACTIVE)
            return (await session.scalars(query)).all()

    async def update_outbound(self, hook_id: str, **values: Any) -> OutboundHook | None:
        return await self._update(OutboundHook, hook_id, values)

    async def remove_outbound(self, hook_id: str) -> None:
        async with self._write() as session:
            await session.execute(delete(OutboundHook).where(OutboundHook.id == hook_id))
            await session.execute(
                delete(OutboundDelivery).where(OutboundDelivery.hook_id == hook_id, OutboundDelivery.state == "pending")
            )

    async def add_delivery(self, delivery: OutboundDelivery) -> bool:
        """False when this event was queued for this hook before (a replayed Matrix event)."""
        try:
            async with self._write() as session:
                session.add(delivery)
        except IntegrityError:
            return False
        return True

    async def due_deliveries(self, now_ms: int, limit: int = 100) -> Sequence[OutboundDelivery]:
        async with self._read() as session:
            query = (
                select(OutboundDelivery)
                .where(OutboundDelivery.state == "pending", OutboundDelivery.next_attempt_ms <= now_ms)
                .order_by(OutboundDelivery.next_attempt_ms).limit(limit)
            )
            return (await session.scalars(query)).all()

    async def next_delivery_ms(self) -> int | None:
        async with self._read() as session:
            value = await session.scalar(
                select(func.min(OutboundDelivery.next_attempt_ms)).where(OutboundDelivery.state == "pending")
            )
            return int(value) if value is not None else None

    async def update_delivery(self, delivery_id: str, **values: Any) -> None:
        await self._update(OutboundDelivery, delivery_id, values)

    # -- private rooms -------------------------------------------------------------------------

    async def private_room(self, user_id: str) -> str | None:
        async with self._read() as session:
            row = await session.get(PrivateRoom, user_id)
            return row.room_id if row else None

    async def set_private_room(self, user_id: str, room_id: str) -> None:
        async with self._write() as session:
            await session.merge(PrivateRoom(user_id=user_id, room_id=room_id))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=5000"):
        cursor.execute(pragma)
    cursor.close()


__all__ = [
    "ACTIVE",
    "SUSPENDED",
    "Added",
    "Hook",
    "HookGhost",
    "InboundMessage",
    "OutboundDelivery",
    "OutboundHook",
    "WebhookStore",
]
