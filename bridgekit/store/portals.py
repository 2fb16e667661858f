"""Portals: which Matrix room bridges which remote chat, and whether its relay is on.

A chat can instead be a *feed* of a room (``link_feed``): its events are posted into the room, but
the room is not its portal. A feed keeps ``room_id`` NULL and names its room in ``meta`` (key
``feed_room``), so nothing that finds portals by room (Matrix -> remote routing, unlink, the room
a new link displaces) ever sees it, and any number of feeds can post into one room beside its
portal, without a schema change.

Every Matrix message asks "is this room a portal, and is its relay on?": answered from memory.
One process owns the database, and every change goes through the methods below, which forget what
they change (portals change rarely: forgetting them all is fine).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import portal
from bridgekit.store.upsert import dialect_module

_PORTAL: Table = portal

CACHE_LIMIT = 100_000
"""Portals remembered per index before the memory starts over."""


@dataclass(frozen=True, slots=True)
class PortalRow:
    id: int
    network: str
    remote_id: str
    room_id: str | None
    name: str | None
    unlinked: bool = False
    """An admin unlinked the room: the chat is not bridged until someone links it again."""
    feed_room: str | None = None
    """The room the chat's events are posted into when the chat is a feed (``room_id`` is then None)."""

    @property
    def posts_into(self) -> str | None:
        """The room this chat's events are posted into now: its portal room, or its feed's room."""
        return self.room_id or self.feed_room


class PortalStore:
    """The ``portal`` table, remembered in front."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_room: dict[str, PortalRow | None] = {}
        self._by_id: dict[int, PortalRow] = {}
        self._by_chat: dict[tuple[str, str], PortalRow] = {}
        self._relay: dict[int, bool | None] = {}
        self._ensure = dialect_module(db.dialect).insert(_PORTAL).on_conflict_do_nothing()

    def _forget(self) -> None:
        self._by_chat.clear()
        self._by_room.clear()
        self._by_id.clear()
        self._relay.clear()

    async def portal(self, network: str, remote_id: str) -> PortalRow | None:
        cached = self._by_chat.get((network, remote_id))
        if cached is not None:
            return cached
        portal = await self._find(_PORTAL.c.network == network, _PORTAL.c.remote_id == remote_id,
                                  _PORTAL.c.receiver == "")
        if portal is not None:
            if len(self._by_chat) > CACHE_LIMIT:
                self._by_chat.clear()
            self._by_chat[(network, remote_id)] = portal
        return portal

    async def portal_by_id(self, portal_id: int) -> PortalRow:
        cached = self._by_id.get(portal_id)
        if cached is not None:
            return cached
        portal = await self._find(_PORTAL.c.id == portal_id)
        if portal is None:
            raise LookupError(f"no portal with id {portal_id}")
        self._by_id[portal_id] = portal
        return portal

    async def portal_for_room(self, room_id: str) -> PortalRow | None:
        if room_id in self._by_room:
            return self._by_room[room_id]
        portal = await self._find(_PORTAL.c.room_id == room_id)
        if len(self._by_room) > CACHE_LIMIT:
            self._by_room.clear()
        self._by_room[room_id] = portal
        return portal

    async def _find(self, *conditions: ColumnElement[bool]) -> PortalRow | None:
        columns = (_PORTAL.c.id, _PORTAL.c.network, _PORTAL.c.remote_id, _PORTAL.c.room_id, _PORTAL.c.name,
                   _PORTAL.c.meta)
        async with self._db.read() as conn:
            row = (await conn.execute(select(*columns).where(*conditions))).first()
        if row is None:
            return None
        meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta or "{}")
        feed_room = meta.get("feed_room")
        return PortalRow(row.id, row.network, row.remote_id, row.room_id, row.name, bool(meta.get("unlinked")),
                         feed_room if isinstance(feed_room, str) else None)

    async def link_portal(self, network: str, remote_id: str, room_id: str, *, origin: str = "plumbed") -> PortalRow:
        """Point the portal of (network, remote_id) at ``room_id``, creating the portal if needed."""
        async with self._db.write() as conn:
            portal_id = await self.ensure_portal(conn, network, remote_id)
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            kept = {key: value for key, value in (meta if isinstance(meta, dict) else {}).items()
                    if key not in ("unlinked", "feed_room")}  # a feed linked as a portal stops being a feed
            # A room can be the portal of one chat only: a room linked anew leaves its old chat.
            await conn.execute(update(_PORTAL).where(_PORTAL.c.room_id == room_id, _PORTAL.c.id != portal_id)
                               .values(room_id=None))
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id)
                               .values(room_id=room_id, origin=origin, meta=kept))
        self._forget()
        return await self.portal_by_id(portal_id)

    async def link_feed(self, network: str, remote_id: str, room_id: str) -> PortalRow:
        """Make (network, remote_id) a feed of ``room_id``: its events are posted there, and the
        room stays whatever else it is (another chat's portal, or no portal). A chat that was a
        portal stops being one (its old room keeps its history). Writes only when it changes."""
        current = await self.portal(network, remote_id)
        if current is not None and current.room_id is None and current.feed_room == room_id:
            return current
        async with self._db.write() as conn:
            portal_id = await self.ensure_portal(conn, network, remote_id)
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            kept = {key: value for key, value in (meta if isinstance(meta, dict) else {}).items() if key != "unlinked"}
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id)
                               .values(room_id=None, origin="feed", meta={**kept, "feed_room": room_id}))
        self._forget()
        return await self.portal_by_id(portal_id)

    async def feeds_into(self, room_id: str) -> list[PortalRow]:
        """The feeds posting into ``room_id`` (of any connector)."""
        async with self._db.read() as conn:
            rows = (await conn.execute(select(_PORTAL.c.id, _PORTAL.c.meta).where(_PORTAL.c.origin == "feed",
                                                                                   _PORTAL.c.room_id.is_(None)))).all()
        feeds = []  # feeds are few (one per connector and room): filtered here, not in dialect-specific JSON SQL
        for row in rows:
            meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta or "{}")
            if meta.get("feed_room") == room_id:
                feeds.append(await self.portal_by_id(int(row.id)))
        return feeds

    async def move_feed(self, portal_id: int, room_id: str) -> None:
        """Point a feed at another room (its room was upgraded)."""
        async with self._db.write() as conn:
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id)
                               .values(meta={**(meta if isinstance(meta, dict) else {}), "feed_room": room_id}))
        self._forget()

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
        self._forget()
        return portal

    async def portal_chats(self, network: str) -> list[str]:
        """The chats of ``network`` that have a portal room."""
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(_PORTAL.c.remote_id).where(_PORTAL.c.network == network, _PORTAL.c.room_id.is_not(None))
                .order_by(_PORTAL.c.id)
            )).all()
        return [str(row[0]) for row in rows]

    async def linked_portals(self) -> list[PortalRow]:
        """Every portal with a room, in the order they were made (feeds are not portals)."""
        async with self._db.read() as conn:
            rows = (await conn.execute(
                select(_PORTAL.c.id).where(_PORTAL.c.room_id.is_not(None)).order_by(_PORTAL.c.id)
            )).all()
        return [await self.portal_by_id(int(row[0])) for row in rows]

    async def set_portal_room(self, portal_id: int, room_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(room_id=room_id))
        self._forget()

    async def ensure_portal(self, conn: AsyncConnection, network: str, remote_id: str) -> int:
        """The portal ID of (network, remote_id), made inside the caller's write when new."""
        await conn.execute(self._ensure.values(network=network, remote_id=remote_id, receiver="",
                                               created_at=now_ms(), meta={}))
        portal_id = (
            await conn.execute(
                select(_PORTAL.c.id).where(
                    _PORTAL.c.network == network, _PORTAL.c.remote_id == remote_id, _PORTAL.c.receiver == ""
                )
            )
        ).scalar_one()
        return int(portal_id)

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


__all__ = ["PortalRow", "PortalStore"]
