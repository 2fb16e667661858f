"""The message map: one message on both sides (remote message ID <-> Matrix event ID), and the
reactions given to it.

It serves replies, edits, redactions, reactions and receipts in both directions, and the echo
check: a message the bridge sent to the network, coming back from it, is not new. Rows are
written behind (``store/write_behind.py``) and read through: a lookup of a row still pending
commits the batch first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.sql import Executable

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import message, reaction
from bridgekit.store.upsert import dialect_module
from bridgekit.store.write_behind import WriteBehind

_MESSAGE: Table = message
_REACTION: Table = reaction

RECENT_SENDS = 20_000
"""Sends to the network remembered in memory for echo checks."""


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


class MessageMap:
    """The ``message`` and ``reaction`` tables."""

    def __init__(self, db: Database, write_behind: WriteBehind) -> None:
        self._db = db
        self._write_behind = write_behind
        self._insert = dialect_module(db.dialect).insert
        self._add_row: Executable = self._insert(_MESSAGE).on_conflict_do_nothing()
        self._ours: OrderedDict[tuple[int, str], None] = OrderedDict()
        """(portal, remote ID) of messages the bridge sent to the network, newest last: the echo
        check asks this instead of the database (see :meth:`sent_by_us`)."""
        self._pending_keys: set[tuple[int, str]] = set()
        self._pending_events: set[str] = set()
        write_behind.on_written(self._written)

    # ---- writing (behind) --------------------------------------------------------------------

    def map_matrix_message(self, portal_id: int, remote_id: str, event_id: str, sender_user_id: str) -> None:
        """A Matrix message became remote message ``remote_id``: remember both ways."""
        self._remember_ours(portal_id, remote_id)
        self._buffer({
            "portal_id": portal_id, "remote_id": remote_id, "part_id": "", "event_id": event_id, "origin": "matrix",
            "sender_user_id": sender_user_id, "sender_remote_id": None, "ts": now_ms(),
            "reply_to_remote_id": None, "send_txn_id": None, "meta": {},
        })

    def map_remote_message(
        self, portal_id: int, remote_id: str, event_id: str, *, sender_user_id: str, sender_remote_id: str,
        ts: int, reply_to_remote_id: str | None, send_txn_id: str,
    ) -> None:
        """A remote message was posted on Matrix as ``event_id``: remember both ways."""
        self._buffer({
            "portal_id": portal_id, "remote_id": remote_id, "part_id": "", "event_id": event_id,
            "origin": "remote", "sender_user_id": sender_user_id, "sender_remote_id": sender_remote_id, "ts": ts,
            "reply_to_remote_id": reply_to_remote_id, "send_txn_id": send_txn_id, "meta": {},
        })

    def _buffer(self, row: dict[str, Any]) -> None:
        self._pending_keys.add((row["portal_id"], row["remote_id"]))
        self._pending_events.add(row["event_id"])
        self._write_behind.add(self._add_row, row)

    def _written(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        if statement is self._add_row:
            self._pending_keys.difference_update((row["portal_id"], row["remote_id"]) for row in rows)
            self._pending_events.difference_update(row["event_id"] for row in rows)

    async def _settled(self, *, key: tuple[int, str] | None = None, event_id: str | None = None) -> None:
        """Flush first when the row asked for is still pending."""
        pending_key = key is not None and key in self._pending_keys
        if pending_key or (event_id is not None and event_id in self._pending_events):
            await self._write_behind.flush()

    # ---- echoes ------------------------------------------------------------------------------

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

    # ---- reading (through) -------------------------------------------------------------------

    async def remote_id_for(self, event_id: str) -> str | None:
        """The remote message a Matrix event is (either way), for replies."""
        mapped = await self.mapped_by_event(event_id)
        return mapped.remote_id if mapped is not None else None

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

    # ---- reactions ---------------------------------------------------------------------------

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


__all__ = ["RECENT_SENDS", "MappedMessage", "MessageMap"]
