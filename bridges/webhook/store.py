"""Reads and writes of the webhook bridge's tables (``tables.py``), through ``ctx.database``.

Every function is one short transaction of the bridge's own database (on SQLite the framework's
single writer, so no "database is locked"); rows come back detached, never lazily loaded.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bridgekit import ConnectorDatabase
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row, outbound_row
from bridges.webhook.tables import ACTIVE, SUSPENDED, Hook, HookGhost, InboundMessage, OutboundHook

log = logging.getLogger(__name__)


class Added(enum.Enum):
    """What :meth:`WebhookStore.add_inbound` did with a request."""

    NEW = "new"
    SAME_KEY = "same_key"
    """Its Idempotency-Key (or GitHub delivery ID) was accepted before: the earlier answer applies."""
    SAME_BODY = "same_body"
    """Its body, signed alone, was accepted before under another key: a replay."""


Row = TypeVar("Row", Hook, OutboundHook)


class WebhookStore:
    def __init__(self, database: ConnectorDatabase) -> None:
        self._db = database
        self._hooks: dict[str, Hook] = {}
        """Inbound hooks by ID, as read (every request reads its hook): forgotten at every change
        of a hook, all of which go through this store (:meth:`_hook_write`)."""
        self._changes = 0
        """Counts hook changes begun and ended: a read that saw it move is not kept (it may have
        read the row from before the change)."""

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._db.read() as connection, AsyncSession(bind=connection, expire_on_commit=False) as session:
            yield session

    # -- hooks, inbound and outbound -----------------------------------------------------------

    @asynccontextmanager
    async def _hook_write(self) -> AsyncIterator[AsyncSession]:
        self._changes += 1
        self._hooks.clear()
        try:
            async with self._db.write_session() as session:
                yield session
        finally:
            self._changes += 1
            self._hooks.clear()

    async def add(self, hook: Hook | OutboundHook) -> None:
        async with self._hook_write() as session:
            session.add(hook)

    async def hook(self, hook_id: str) -> Hook | None:
        """An inbound hook (from memory when it was read before and has not changed since)."""
        if (known := self._hooks.get(hook_id)) is not None:
            return known
        changes = self._changes
        found = await self.get(Hook, hook_id)
        if found is not None and changes == self._changes:
            self._hooks[hook_id] = found
        return found

    async def get(self, model: type[Row], hook_id: str) -> Row | None:
        async with self._read() as session:
            return await session.get(model, hook_id)

    async def in_room(self, model: type[Row], room_id: str, *, active_only: bool = False) -> Sequence[Row]:
        """The room's hooks of ``model``, oldest first."""
        query = select(model).where(model.room_id == room_id).order_by(model.created_ms)
        async with self._read() as session:
            return (await session.scalars(query.where(model.status == ACTIVE) if active_only else query)).all()

    async def update(self, model: type[Row], hook_id: str, **values: Any) -> None:
        async with self._hook_write() as session:
            await session.execute(update(model).where(model.id == hook_id).values(**values))

    async def remove(self, model: type[Row], hook_id: str) -> None:
        """Removes the hook (and an inbound hook's ghosts)."""
        async with self._hook_write() as session:
            await session.execute(delete(model).where(model.id == hook_id))
            if model is Hook:
                await session.execute(delete(HookGhost).where(HookGhost.hook_id == hook_id))

    async def suspend_creator(self, room_id: str, creator: str, reason: str) -> tuple[list[Hook], list[OutboundHook]]:
        """Suspend the active hooks ``creator`` made in ``room_id`` (they left it); returns them.
        Deliveries still queued for those outbound hooks find them suspended and are dropped."""
        def theirs(model: type[Row]) -> Select[Row]:
            return select(model).where(model.room_id == room_id, model.creator == creator, model.status == ACTIVE)

        async with self._hook_write() as session:
            hooks = list(await session.scalars(theirs(Hook)))
            outbound = list(await session.scalars(theirs(OutboundHook)))
            suspended: list[Hook | OutboundHook] = [*hooks, *outbound]
            for hook in suspended:
                hook.status, hook.suspended_reason = SUSPENDED, reason
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
        async with self._hook_write() as session:
            rows: list[tuple[Hook | OutboundHook, str]] = [
                *((hook, inbound_row(hook.id)) for hook in await session.scalars(select(Hook))),
                *((hook, outbound_row(hook.id)) for hook in await session.scalars(select(OutboundHook))),
            ]
            for row, bound_to in rows:
                if row.sealed_secret is None or not box.needs_reseal(row.sealed_secret):
                    continue
                try:
                    row.sealed_secret = box.seal(box.open(row.sealed_secret, row=bound_to), row=bound_to)
                except SecretBoxUnavailable as error:
                    log.error("the signing secret of %s stays as it is: %s", bound_to, error)
                    continue
                done += 1
        return done

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
            async with self._db.write_session() as session:
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

    async def finish_inbound(self, outcomes: Mapping[int, tuple[str, str | None]]) -> None:
        """Record how messages ended: row ID -> (``sent`` or ``failed``, the event ID)."""
        if not outcomes:
            return
        async with self._db.write_session() as session:
            for row_id, (state, event_id) in outcomes.items():
                await session.execute(update(InboundMessage).where(InboundMessage.id == row_id)
                                      .values(state=state, event_id=event_id, attempts=InboundMessage.attempts + 1))

    async def pending_inbound(self) -> Sequence[InboundMessage]:
        async with self._read() as session:
            query = select(InboundMessage).where(InboundMessage.state == "pending").order_by(InboundMessage.id)
            return (await session.scalars(query)).all()

    async def prune_inbound(self, before_ms: int) -> int:
        """Forget finished requests older than the idempotency window."""
        async with self._db.write_session() as session:
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
        async with self._db.write_session() as session:
            await session.merge(ghost)

    async def hook_rooms(self) -> list[str]:
        """The rooms that have inbound hooks (the connector's feeds post into each)."""
        async with self._read() as session:
            return list((await session.scalars(select(Hook.room_id).distinct())).all())


__all__ = [
    "ACTIVE",
    "SUSPENDED",
    "Added",
    "Hook",
    "HookGhost",
    "InboundMessage",
    "OutboundHook",
    "WebhookStore",
]
