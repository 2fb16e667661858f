"""SQL of the outbox toward Matrix, and of the portal, ghost and message maps it needs.

A remote event a connector emits is stored here, durably, before ``emit`` returns; it is then
sent to Matrix by the portal's ordered worker and marked sent together with the message map row
(remote message ID -> Matrix event ID) in one transaction. Each row's idempotency key (network,
chat, message) is unique, so emitting the same remote message twice stores it once, and the
Matrix transaction ID derived from it makes a resend after a crash land once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.models import Ghost, Message, OutboxItem, Portal

_OUTBOX: Table = OutboxItem.__table__  # type: ignore[assignment]
_PORTAL: Table = Portal.__table__  # type: ignore[assignment]
_GHOST: Table = Ghost.__table__  # type: ignore[assignment]
_MESSAGE: Table = Message.__table__  # type: ignore[assignment]

TO_MATRIX = "to_matrix"


@dataclass(frozen=True, slots=True)
class PortalRow:
    id: int
    network: str
    remote_id: str
    room_id: str | None
    name: str | None


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

    def _insert(self, table: Table) -> Any:
        return (postgresql if self._db.dialect == "postgresql" else sqlite).insert(table)

    # ---- portals ---------------------------------------------------------------------------

    async def portal(self, network: str, remote_id: str) -> PortalRow | None:
        return await self._find_portal(
            _PORTAL.c.network == network, _PORTAL.c.remote_id == remote_id, _PORTAL.c.receiver == ""
        )

    async def portal_by_id(self, portal_id: int) -> PortalRow:
        portal = await self._find_portal(_PORTAL.c.id == portal_id)
        if portal is None:
            raise LookupError(f"no portal with id {portal_id}")
        return portal

    async def portal_for_room(self, room_id: str) -> PortalRow | None:
        return await self._find_portal(_PORTAL.c.room_id == room_id)

    async def _find_portal(self, *conditions: ColumnElement[bool]) -> PortalRow | None:
        columns = (_PORTAL.c.id, _PORTAL.c.network, _PORTAL.c.remote_id, _PORTAL.c.room_id, _PORTAL.c.name)
        async with self._db.read() as conn:
            row = (await conn.execute(select(*columns).where(*conditions))).first()
        return PortalRow(*row) if row is not None else None

    async def link_portal(self, network: str, remote_id: str, room_id: str, *, origin: str = "plumbed") -> PortalRow:
        """Point the portal of (network, remote_id) at ``room_id``, creating the portal if needed."""
        async with self._db.write() as conn:
            portal_id = await self._ensure_portal(conn, network, remote_id)
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(room_id=room_id, origin=origin))
        return await self.portal_by_id(portal_id)

    async def set_portal_room(self, portal_id: int, room_id: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(room_id=room_id))

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
        """The send landed: mark it and map the remote message to its Matrix event, atomically."""
        async with self._db.write() as conn:
            await conn.execute(update(_OUTBOX).where(_OUTBOX.c.id == entry.id).values(state="sent"))
            await conn.execute(
                self._insert(_MESSAGE)
                .values(
                    portal_id=entry.portal_id, remote_id=remote_id, part_id="", event_id=event_id, origin="remote",
                    sender_user_id=sender_user_id, sender_remote_id=sender_remote_id, ts=ts,
                    reply_to_remote_id=reply_to_remote_id, send_txn_id=entry.idempotency_key, meta={},
                )
                .on_conflict_do_nothing()
            )

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
        async with self._db.read() as conn:
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
        value = (meta or {}).get("relay") if isinstance(meta, dict) else None
        return default if value is None else bool(value)

    async def set_relay(self, portal_id: int, enabled: bool) -> None:
        async with self._db.write() as conn:
            meta = (await conn.execute(select(_PORTAL.c.meta).where(_PORTAL.c.id == portal_id))).scalar()
            updated = {**(meta if isinstance(meta, dict) else {}), "relay": enabled}
            await conn.execute(update(_PORTAL).where(_PORTAL.c.id == portal_id).values(meta=updated))

    # ---- message map and ghosts ------------------------------------------------------------

    async def remote_id_for(self, event_id: str) -> str | None:
        """The remote message a Matrix event is (either way), for replies."""
        async with self._db.read() as conn:
            value = (await conn.execute(select(_MESSAGE.c.remote_id).where(_MESSAGE.c.event_id == event_id))).scalar()
        return str(value) if value is not None else None

    async def map_matrix_message(self, portal_id: int, remote_id: str, event_id: str, sender_user_id: str) -> None:
        """A Matrix message became remote message ``remote_id``: remember both ways."""
        async with self._db.write() as conn:
            await conn.execute(
                self._insert(_MESSAGE)
                .values(
                    portal_id=portal_id, remote_id=remote_id, part_id="", event_id=event_id, origin="matrix",
                    sender_user_id=sender_user_id, ts=now_ms(), meta={},
                )
                .on_conflict_do_nothing()
            )

    async def event_for(self, portal_id: int, remote_id: str) -> str | None:
        """The Matrix event a remote message became, for replies (and later edits, redactions)."""
        async with self._db.read() as conn:
            value = (
                await conn.execute(
                    select(_MESSAGE.c.event_id).where(
                        _MESSAGE.c.portal_id == portal_id, _MESSAGE.c.remote_id == remote_id
                    ).order_by(_MESSAGE.c.part_id).limit(1)
                )
            ).scalar()
        return str(value) if value is not None else None

    async def ghost_name(self, network: str, remote_id: str) -> str | None:
        """The display name last set on the ghost, or None if none was set."""
        async with self._db.read() as conn:
            return (
                await conn.execute(
                    select(_GHOST.c.name).where(
                        _GHOST.c.network == network, _GHOST.c.remote_id == remote_id, _GHOST.c.name_set.is_(True)
                    )
                )
            ).scalar()

    async def remember_ghost_name(self, network: str, remote_id: str, user_id: str, name: str) -> None:
        statement = self._insert(_GHOST).values(
            network=network, remote_id=remote_id, user_id=user_id, name=name, name_set=True, meta={}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_GHOST.c.network, _GHOST.c.remote_id], set_={"name": name, "name_set": True}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)


__all__ = ["TO_MATRIX", "OutboxEntry", "OutboxStore", "PortalRow"]
