"""The outbox toward Matrix: remote events waiting to be posted, in the order they were emitted.

A remote event a connector emits is stored here, durably, before ``emit`` returns; it is then
posted to Matrix by the portal's ordered worker and marked done (with the Matrix event it became)
through the write-behind, in the same transaction as its message map row. Each row's idempotency
key is unique, so emitting the same remote event twice stores it once, and the Matrix transaction
ID derived from it makes a resend after a crash land once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.portals import PortalStore
from bridgekit.store.tables import outbox
from bridgekit.store.upsert import dialect_module
from bridgekit.store.write_behind import WriteBehind

_OUTBOX: Table = outbox

TO_MATRIX = "to_matrix"

PAGE = 500
"""Rows read at a time by the start-up replay."""


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
    """The event as :func:`bridgekit.events.remote_event_to_json` wrote it, plus ``network``."""
    attempts: int


class OutboxStore:
    """The ``outbox`` table (direction ``to_matrix``)."""

    def __init__(self, db: Database, portals: PortalStore, write_behind: WriteBehind) -> None:
        self._db = db
        self._portals = portals
        self._write_behind = write_behind
        self._add = dialect_module(db.dialect).insert(_OUTBOX).on_conflict_do_nothing()

    async def add(
        self, network: str, chat_id: str, idempotency_key: str, payload: dict[str, Any]
    ) -> OutboxEntry | None:
        """Store one send toward Matrix (and its portal, if new) and commit; ``None`` when the
        same key was stored before (the remote network delivered the event twice)."""
        async with self._db.write() as conn:
            portal_id = await self._portals.ensure_portal(conn, network, chat_id)
            inserted = (
                await conn.execute(
                    self._add.values(
                        direction=TO_MATRIX, portal_id=portal_id, idempotency_key=idempotency_key,
                        payload=payload, state="pending", attempts=0, created_at=now_ms(),
                    ).returning(_OUTBOX.c.id)
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
                        .limit(PAGE)
                    )
                ).all()
            for row in page:
                payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
                yield OutboxEntry(row.id, row.portal_id, row.idempotency_key, payload, row.attempts)
            if len(page) < PAGE:
                return
            after = page[-1].id

    def mark_done(self, entry: OutboxEntry, event_id: str | None = None) -> None:
        """The send is over, as ``event_id`` when it posted one; committed with the next batch of
        the write-behind (see ``store/write_behind.py``)."""
        self._write_behind.add(_MARK_SENT, {"row": entry.id, "posted": event_id})

    async def outcome(self, idempotency_key: str) -> SendOutcome | None:
        """Where the send stored under ``idempotency_key`` stands (None: no such send). Flushes
        first, so a send that landed a moment ago reads as sent."""
        await self._write_behind.flush()
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


_MARK_SENT = (
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row")).values(state="sent", event_id=bindparam("posted"))
)
"""Run with a list of ``{"row", "posted"}`` (one statement, many rows)."""


__all__ = ["TO_MATRIX", "OutboxEntry", "OutboxStore", "SendOutcome"]
