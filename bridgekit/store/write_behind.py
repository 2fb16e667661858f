"""Bookkeeping after a send, committed in batches: one write for many messages.

What follows a send (the message map row, the outbox row's "sent") waits up to
:data:`FLUSH_SECONDS` and is committed together with the others that came meanwhile, instead of
one fsync per message, which capped a portal near 100 messages/s. The stores that buffer here
(``store/message_map.py``, ``store/outbox.py``) flush before they read what may be pending, so
nothing reads stale data; a crash loses at most the last batch of *bookkeeping*: the messages
were delivered, and a replayed send reuses its transaction ID, so the homeserver answers with the
first event instead of posting twice. One batch holds the rows of every store, so a send's map row
and its "sent" mark are committed in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.sql import Executable

from bridgekit.store.engine import Database

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.02
"""How long bookkeeping after a send may wait to be committed with others."""

Written = Callable[[Executable, list[dict[str, Any]]], None]
"""Told, after a commit, which rows of which statement it wrote."""


class WriteBehind:
    """Rows for prepared statements (each run with a list of parameter sets), committed in batches."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: dict[Executable, list[dict[str, Any]]] = {}
        """Statement -> its rows not yet committed, statements in the order first used."""
        self._listeners: list[Written] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def on_written(self, listener: Written) -> None:
        self._listeners.append(listener)

    def add(self, statement: Executable, row: dict[str, Any]) -> None:
        self._pending.setdefault(statement, []).append(row)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_soon())

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows in self._pending.values())

    async def _flush_soon(self) -> None:
        delay = FLUSH_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                return
            except Exception:
                # Kept in memory and tried again: the database may be back in a moment.
                log.exception("could not write %d bookkeeping rows after sends; retrying", self.pending)
                delay = min(delay * 2 if delay >= 0.5 else 0.5, 30.0)

    async def flush(self) -> None:
        """Commit every pending row now (also at shutdown)."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                async with self._db.write() as conn:
                    for statement, rows in batch.items():
                        await conn.execute(statement, rows)
            except BaseException:
                for statement, rows in batch.items():  # kept, ahead of newer rows, for the next try
                    self._pending.setdefault(statement, [])[:0] = rows
                raise
            for statement, rows in batch.items():
                for listener in self._listeners:
                    listener(statement, rows)


__all__ = ["FLUSH_SECONDS", "WriteBehind"]
