"""SQL of the outbox toward Matrix, and of the portal, ghost and message maps it needs.

A remote event a connector emits is stored here, durably, before ``emit`` returns; it is then
sent to Matrix by the portal's ordered worker and marked sent together with the message map row
(remote message ID -> Matrix event ID) in one transaction. Each row's idempotency key (network,
chat, message) is unique, so emitting the same remote message twice stores it once, and the
Matrix transaction ID derived from it makes a resend after a crash land once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.models import Ghost, Message, OutboxItem, Portal, Reaction

_OUTBOX: Table = OutboxItem.__table__  # type: ignore[assignment]
_PORTAL: Table = Portal.__table__  # type: ignore[assignment]
_GHOST: Table = Ghost.__table__  # type: ignore[assignment]
_MESSAGE: Table = Message.__table__  # type: ignore[assignment]
_REACTION: Table = Reaction.__table__  # type: ignore[assignment]

log = logging.getLogger(__name__)

TO_MATRIX = "to_matrix"

RECENT_SENDS = 20_000
"""Sends to the network remembered in memory for echo checks."""

FLUSH_SECONDS = 0.02
"""How long bookkeeping after a send may wait to be committed with others."""


@dataclass(frozen=True, slots=True)
class PortalRow:
    id: int
    network: str
    remote_id: str
    room_id: str | None
    name: str | None
    unlinked: bool = False
    """An admin unlinked the room: the chat is not bridged until someone links it again."""


@dataclass(frozen=True, slots=True)
class MappedMessage:
    """A row of the message map: one message, on both sides."""

    id: int
    portal_id: int
    remote_id: str
    event_id: str
    origin: str
    """``matrix`` (said on Matrix, sent to the network) or ``remote``."""
    sender_user_id: str


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """Where a stored send stands (the answer to an emit that waits)."""

    state: str
    """``pending``, ``sent`` or ``failed``."""
    event_id: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    portal_id: int
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int


class OutboxStore:
    """Durable remote -> Matrix sends, and the maps they read and write."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Every Matrix message asks "is this room a portal, and is its relay on?": answered from
        # memory. One process owns the database, and every change goes through the methods
        # below, which forget what they change (portals change rarely: clearing all is fine).
        self._by_room: dict[str, PortalRow | None] = {}
        self._by_id: dict[int, PortalRow] = {}
        self._relay: dict[int, bool | None] = {}
        self._ghost_names: dict[tuple[str, str], str | None] = {}
        self._by_chat: dict[tuple[str, str], PortalRow] = {}
        self._ours: OrderedDict[tuple[int, str], None] = OrderedDict()
        """(portal, remote ID) of messages the bridge sent to the network, newest last: the echo
        check asks this instead of the database (see :meth:`sent_by_us`)."""
        # Write-behind of what follows a send (the message map row, the outbox row's "sent"):
        # committed in batches every FLUSH_SECONDS instead of one fsync per message, which
        # capped a portal near 100 messages/s. Lookups see pending rows (they flush first), so
        # nothing reads stale data; a crash loses at most the last batch of *bookkeeping*: the
        # messages were delivered, and a replayed send reuses its transaction ID, so the
        # homeserver answers with the first event instead of posting twice.
        self._pending_maps: list[dict[str, Any]] = []
        self._pending_keys: set[tuple[int, str]] = set()
        self._pending_events: set[str] = set()
        self._pending_sent: list[dict[str, Any]] = []
        """``{"row": outbox id, "posted": Matrix event ID or None}`` of sends that landed."""
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()

    def _forget_portals(self) -> None:
        self._by_chat.clear()
        self._by_room.clear()
        self._by_id.clear()
        self._relay.clear()

    # ---- write-behind ------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        delay = FLUSH_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                return
            except Exception:
                # Kept in memory and tried again: the database may be back in a moment.
                log.exception("could not write %d message-map rows; retrying", len(self._pending_maps))
                delay = min(delay * 2 if delay >= 0.5 else 0.5, 30.0)

    async def flush(self) -> None:
        """Commit the pending map rows and "sent" marks now (also at shutdown)."""
        async with self._flush_lock:
            maps, sent = self._pending_maps, self._pending_sent
            if not maps and not sent:
                return
            self._pending_maps, self._pending_sent = [], []
            try:
                async with self._db.write() as conn:
                    if sent:
                        await conn.execute(_MARK_SENT, sent)
                    if maps:
                        await conn.execute(self._insert(_MESSAGE).on_conflict_do_nothing(), maps)
            except BaseException:
                self._pending_maps[:0], self._pending_sent[:0] = maps, sent  # kept for the next try
                raise
            self._pending_keys.difference_update((row["portal_id"], row["remote_id"]) for row in maps)
            self._pending_events.difference_update(row["event_id"] for row in maps)

    def _buffer_map(self, row: dict[str, Any]) -> None:
        self._pending_maps.append(row)
        self._pending_keys.add((row["portal_id"], row["remote_id"]))
        self._pending_events.add(row["event_id"])
        self._schedule_flush()

    async def _settled(self, *, key: tuple[int, str] | None = None, event_id: str | None = None) -> None:
        """Flush first when the row asked for is still pending."""
        pending_key = key is not None and key in self._pending_keys
        if pending_key or (event_id is not None and event_id in self._pending_events):
            await self.flush()

    def _insert(self, table: Table) -> Any:
        return (postgresql if self._db.dialect == "postgresql" else sqlite).insert(table)

    # ---- portals ---------------------------------------------------------------------------

    async def portal(self, network: str, remote_id: str) -> PortalRow | None:
        cached = self._by_chat.get((network, remote_id))
        if cached is not None:
            return cached
        portal = await self._find_portal(
            _PORTAL.c.network == network, _PORTAL.c.remote_id == remote_id, _PORTAL.c.receiver == ""
        )
        if portal is not None:
            if len(self._by_chat) > 100_000:
                self._by_chat.clear()
            self._by_chat[(network, remote_id)] = portal
        return portal

    async def portal_by_id(self, portal_id: int) -> PortalRow:
        cached = self._by_id.get(portal_id)
        if cached is not None:
            return cached
        portal = await self._find_portal(_PORTAL.c.id == portal_id)
        if portal is None:
            raise LookupError(f"no portal with id {portal_id}")
        self._by_id[portal_id] = portal
        return portal

    async def portal_for_room(self, room_id: str) -> PortalRow | None:
        if room_id in self._by_room:
            return self._by_room[room_id]
        portal = await self._find_portal(_PORTAL.c.room_id == room_id)
        if len(self._by_room) > 100_000:
            self._by_room.clear()
        self._by_room[room_id] = portal
        return portal

    async def _find_portal(self, *conditions: ColumnElement[bool]) -> PortalRow | None:
        columns = (_PORTAL.c.id, _PORTAL.c.network, _PORTAL.c.remote_id, _PORTAL.c.room_id, _PORTAL.c.name,
                   _PORTAL.c.meta)
        async with self._db.read() as conn:
            row = (await conn.execute(select(*columns).where(*conditions))).first()
        if row is None:
            return None
        meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta or "{}")
        return PortalRow(row.id, row.network, row.remote_id, row.room_id, row.name, bool(meta.get("unlinked")))

    async def link_portal(self, network: str, remote_id: str, room_id: str, *, origin: str = "plumbed") -> PortalRow:
        """Point the portal of (network, remote_id) at ``room_id``, creating the portal if needed."""
        async with self._db.write() as conn:
            portal_id = await self._ensure_portal(conn, network, remote_id)
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            kept = {key: value for key, value in (meta if isinstance(meta, dict) else {}).items() if key != "unlinked"}
            # A room can be the portal of one chat only: a room linked anew leaves its old chat.
            await conn.execute(update(_PORTAL).where(_PORTAL.c.room_id == room_id, _PORTAL.c.id != portal_id)
                               .values(room_id=None))
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id)
                               .values(room_id=room_id, origin=origin, meta=kept))
        self._forget_portals()
        return await self.portal_by_id(portal_id)

    async def unlink_room(self, room_id: str) -> PortalRow | None:
        """Stop bridging ``room_id``: its chat keeps its portal row (and message map), without a room,
        marked so that new remote messages do not create a room for it."""
        portal = await self.portal_for_room(room_id)
        if portal is None:
            return None
        async with self._db.write() as conn:
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal.id))).scalar()
            updated = {**(meta if isinstance(meta, dict) else {}), "unlinked": True}
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal.id).values(room_id=None, meta=updated))
        self._forget_portals()
        return portal

    async def portal_chats(self, network: str) -> list[str]:
        """The chats of ``network`` that have a portal room."""
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(_PORTAL.c.remote_id).where(_PORTAL.c.network == network, _PORTAL.c.room_id.is_not(None))
                .order_by(_PORTAL.c.id)
            )).all()
        return [str(row[0]) for row in rows]

    async def set_portal_room(self, portal_id: int, room_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(room_id=room_id))
        self._forget_portals()

    async def _ensure_portal(self, conn: AsyncConnection, network: str, remote_id: str) -> int:
        await conn.execute(
            self._insert(_PORTAL)
            .values(network=network, remote_id=remote_id, receiver="", created_at=now_ms(), meta={})
            .on_conflict_do_nothing()
        )
        portal_id = (
            await conn.execute(
                select(_PORTAL.c.id).where(
                    _PORTAL.c.network == network, _PORTAL.c.remote_id == remote_id, _PORTAL.c.receiver == ""
                )
            )
        ).scalar_one()
        return int(portal_id)

    # ---- the outbox ------------------------------------------------------------------------

    async def add(
        self, network: str, chat_id: str, idempotency_key: str, payload: dict[str, Any]
    ) -> OutboxEntry | None:
        """Store one send toward Matrix (and its portal, if new) and commit; ``None`` when the
        same key was stored before (the remote network delivered the message twice)."""
        async with self._db.write() as conn:
            portal_id = await self._ensure_portal(conn, network, chat_id)
            inserted = (
                await conn.execute(
                    self._insert(_OUTBOX)
                    .values(
                        direction=TO_MATRIX, portal_id=portal_id, idempotency_key=idempotency_key,
                        payload=payload, state="pending", attempts=0, created_at=now_ms(),
                    )
                    .on_conflict_do_nothing()
                    .returning(_OUTBOX.c.id)
                )
            ).first()
        if inserted is None:
            return None
        return OutboxEntry(int(inserted[0]), portal_id, idempotency_key, payload, 0)

    async def pending(self) -> AsyncIterator[OutboxEntry]:
        """Sends not yet done, in the order they were emitted (start-up replay)."""
        after = 0
        while True:
            async with self._db.read() as conn:
                page = (
                    await conn.execute(
                        select(_OUTBOX.c.id, _OUTBOX.c.portal_id, _OUTBOX.c.idempotency_key, _OUTBOX.c.payload,
                               _OUTBOX.c.attempts)
                        .where(_OUTBOX.c.direction == TO_MATRIX, _OUTBOX.c.state == "pending", _OUTBOX.c.id > after)
                        .order_by(_OUTBOX.c.id)
                        .limit(500)
                    )
                ).all()
            for row in page:
                payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
                yield OutboxEntry(row.id, row.portal_id, row.idempotency_key, payload, row.attempts)
            if len(page) < 500:
                return
            after = page[-1].id

    async def mark_sent(
        self, entry: OutboxEntry, *, event_id: str, remote_id: str, sender_user_id: str,
        sender_remote_id: str, ts: int, reply_to_remote_id: str | None,
    ) -> None:
        """The send landed: mark it and map the remote message to its Matrix event (committed
        with the next batch; see the write-behind note in ``__init__``)."""
        self._pending_sent.append({"row": entry.id, "posted": event_id})
        self._buffer_map({
            "portal_id": entry.portal_id, "remote_id": remote_id, "part_id": "", "event_id": event_id,
            "origin": "remote", "sender_user_id": sender_user_id, "sender_remote_id": sender_remote_id, "ts": ts,
            "reply_to_remote_id": reply_to_remote_id, "send_txn_id": entry.idempotency_key, "meta": {},
        })

    async def mark_done(self, entry: OutboxEntry, event_id: str | None = None) -> None:
        """An edit, deletion or reaction landed (they add no row to the message map), as
        ``event_id`` when it posted one; committed with the next batch."""
        self._pending_sent.append({"row": entry.id, "posted": event_id})
        self._schedule_flush()

    async def outcome(self, idempotency_key: str) -> SendOutcome | None:
        """Where the send stored under ``idempotency_key`` stands (None: no such send). Flushes
        first, so a send that landed a moment ago reads as sent."""
        await self.flush()
        query = select(_OUTBOX.c.state, _OUTBOX.c.event_id, _OUTBOX.c.last_error).where(
            _OUTBOX.c.idempotency_key == idempotency_key
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return SendOutcome(str(row.state), row.event_id, row.last_error) if row is not None else None

    async def record_attempt(self, entry_id: int, error: str, *, final: bool) -> None:
        values: dict[str, Any] = {"attempts": _OUTBOX.c.attempts + 1, "last_error": error[:2000]}
        if final:
            values["state"] = "failed"
        async with self._db.write() as conn:
            await conn.execute(update(_OUTBOX).where(_OUTBOX.c.id == entry_id).values(**values))

    async def counts(self) -> dict[str, int]:
        async with self._db.read() as conn:
            rows = (await conn.execute(select(_OUTBOX.c.state, func.count()).group_by(_OUTBOX.c.state))).all()
        return {state: count for state, count in rows}

    # ---- relay per portal ------------------------------------------------------------------

    async def relay_enabled(self, portal_id: int, *, default: bool) -> bool:
        if portal_id not in self._relay:
            async with self._db.read() as conn:
                meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            value = (meta or {}).get("relay") if isinstance(meta, dict) else None
            self._relay[portal_id] = None if value is None else bool(value)
        stored = self._relay[portal_id]
        return default if stored is None else stored

    async def set_relay(self, portal_id: int, enabled: bool) -> None:
        async with self._db.write() as conn:
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            updated = {**(meta if isinstance(meta, dict) else {}), "relay": enabled}
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(meta=updated))
        self._relay.pop(portal_id, None)

    # ---- message map and ghosts ------------------------------------------------------------

    async def remote_id_for(self, event_id: str) -> str | None:
        """The remote message a Matrix event is (either way), for replies."""
        mapped = await self.mapped_by_event(event_id)
        return mapped.remote_id if mapped is not None else None

    def sent_by_us(self, portal_id: int, remote_id: str) -> bool:
        """Whether the bridge sent ``remote_id`` to the network (so the network's copy of it is an
        echo). Answered from memory: this run's sends, plus the newest ones of earlier runs
        (:meth:`load_recent_sends`)."""
        return (portal_id, remote_id) in self._ours

    async def load_recent_sends(self, limit: int = RECENT_SENDS) -> None:
        """Remember the newest sends of earlier runs (an echo may arrive after a restart)."""
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(_MESSAGE.c.portal_id, _MESSAGE.c.remote_id).where(_MESSAGE.c.origin == "matrix")
                .order_by(_MESSAGE.c.id.desc()).limit(limit)
            )).all()
        for portal_id, remote_id in reversed(rows):
            self._remember_ours(int(portal_id), str(remote_id))

    def _remember_ours(self, portal_id: int, remote_id: str) -> None:
        self._ours[(portal_id, remote_id)] = None
        while len(self._ours) > RECENT_SENDS:
            self._ours.popitem(last=False)

    async def map_matrix_message(self, portal_id: int, remote_id: str, event_id: str, sender_user_id: str) -> None:
        """A Matrix message became remote message ``remote_id``: remember both ways (committed
        with the next batch)."""
        self._remember_ours(portal_id, remote_id)
        self._buffer_map({
            "portal_id": portal_id, "remote_id": remote_id, "part_id": "", "event_id": event_id, "origin": "matrix",
            "sender_user_id": sender_user_id, "sender_remote_id": None, "ts": now_ms(),
            "reply_to_remote_id": None, "send_txn_id": None, "meta": {},
        })

    async def event_for(self, portal_id: int, remote_id: str) -> str | None:
        """The Matrix event a remote message became, for replies (and later edits, redactions)."""
        mapped = await self.mapped_by_remote(portal_id, remote_id)
        return mapped.event_id if mapped is not None else None

    async def mapped_by_remote(self, portal_id: int, remote_id: str) -> MappedMessage | None:
        await self._settled(key=(portal_id, remote_id))
        return await self._mapped(_MESSAGE.c.portal_id == portal_id, _MESSAGE.c.remote_id == remote_id)

    async def mapped_by_event(self, event_id: str) -> MappedMessage | None:
        await self._settled(event_id=event_id)
        return await self._mapped(_MESSAGE.c.event_id == event_id)

    async def _mapped(self, *conditions: ColumnElement[bool]) -> MappedMessage | None:
        columns = (_MESSAGE.c.id, _MESSAGE.c.portal_id, _MESSAGE.c.remote_id, _MESSAGE.c.event_id,
                   _MESSAGE.c.origin, _MESSAGE.c.sender_user_id)
        async with self._db.read() as conn:
            query = select(*columns).where(*conditions).order_by(_MESSAGE.c.part_id).limit(1)
            row = (await conn.execute(query)).first()
        return MappedMessage(*row) if row is not None else None

    # ---- reactions -------------------------------------------------------------------------

    async def add_reaction(self, message_row: int, sender: str, emoji: str, event_id: str) -> None:
        """Remember a reaction (either way) so that taking it back finds its event."""
        async with self._db.write() as conn:
            await conn.execute(
                self._insert(_REACTION)
                .values(message_id=message_row, sender_remote_id=sender, emoji_id=emoji, emoji=emoji,
                        event_id=event_id, ts=now_ms())
                .on_conflict_do_nothing()
            )

    async def take_reaction(self, message_row: int, sender: str, emoji: str) -> str | None:
        """Forget a reaction; returns its Matrix event ID (to redact), None if unknown."""
        condition = (_REACTION.c.message_id == message_row, _REACTION.c.sender_remote_id == sender,
                     _REACTION.c.emoji_id == emoji)
        async with self._db.write() as conn:
            event_id = (await conn.execute(select(_REACTION.c.event_id).where(*condition))).scalar()
            await conn.execute(_REACTION.delete().where(*condition))
        return str(event_id) if event_id is not None else None

    async def take_reaction_by_event(self, event_id: str) -> tuple[MappedMessage, str, str] | None:
        """A reaction redacted on Matrix: its message, sender and emoji (forgotten here)."""
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    select(_REACTION.c.message_id, _REACTION.c.sender_remote_id, _REACTION.c.emoji)
                    .where(_REACTION.c.event_id == event_id)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(_REACTION.delete().where(_REACTION.c.event_id == event_id))
        message = await self._mapped(_MESSAGE.c.id == row.message_id)
        return (message, str(row.sender_remote_id), str(row.emoji)) if message is not None else None

    async def ghost_name(self, network: str, remote_id: str) -> str | None:
        """The display name last set on the ghost, or None if none was set (remembered)."""
        key = (network, remote_id)
        if key in self._ghost_names:
            return self._ghost_names[key]
        async with self._db.read() as conn:
            name: str | None = (
                await conn.execute(
                    select(_GHOST.c.name).where(
                        _GHOST.c.network == network, _GHOST.c.remote_id == remote_id, _GHOST.c.name_set.is_(True)
                    )
                )
            ).scalar()
        if len(self._ghost_names) > 100_000:
            self._ghost_names.clear()
        self._ghost_names[key] = name
        return name

    async def ghost_avatar(self, network: str, remote_id: str) -> str | None:
        """The avatar source last applied to the ghost (a URL or mxc URI), or None."""
        async with self._db.read() as conn:
            return (
                await conn.execute(
                    select(_GHOST.c.avatar_id).where(_GHOST.c.network == network, _GHOST.c.remote_id == remote_id)
                )
            ).scalar()

    async def remember_ghost_avatar(
        self, network: str, remote_id: str, user_id: str, source: str, mxc: str | None
    ) -> None:
        """Record that ``source`` was applied (or tried: a refused URL is not fetched again)."""
        statement = self._insert(_GHOST).values(
            network=network, remote_id=remote_id, user_id=user_id, avatar_id=source, avatar_mxc=mxc, meta={}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_GHOST.c.network, _GHOST.c.remote_id], set_={"avatar_id": source, "avatar_mxc": mxc}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)

    async def remember_ghost_name(self, network: str, remote_id: str, user_id: str, name: str) -> None:
        statement = self._insert(_GHOST).values(
            network=network, remote_id=remote_id, user_id=user_id, name=name, name_set=True, meta={}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_GHOST.c.network, _GHOST.c.remote_id], set_={"name": name, "name_set": True}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)
        self._ghost_names[(network, remote_id)] = name


_MARK_SENT = (
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row")).values(state="sent", event_id=bindparam("posted"))
)
"""Run with a list of ``{"row", "posted"}`` (one statement, many rows)."""


__all__ = ["TO_MATRIX", "MappedMessage", "OutboxEntry", "OutboxStore", "PortalRow", "SendOutcome"]
