"""Handling progress written beside a transaction's commit.

Progress rides along with the next stored transaction's commit, and the inbox's progress writer
also writes it in a transaction of its own when none comes. On PostgreSQL the two can run at
once: found by ``bench/ingest.py`` with 4 senders, where a few transactions were answered 503
(``deadlock detected``) because the two upserted the same queue cursors in different orders.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bridgekit.store import Database
from bridgekit.store.inbox import InboxStore
from bridgekit.store.models import InboxCursor

ROOMS = [f"!room{i:03d}:localhost" for i in range(400)]


async def test_progress_beside_a_commit_is_written_and_never_deadlocks(database: Database) -> None:
    store = InboxStore(database)
    for attempt in range(10):
        # The commit takes this progress (rooms in one order) before its first await ...
        for room in ROOMS:
            store.record_handled(room, 2 * attempt + 1)

        async def flush_in_reverse(attempt: int = attempt) -> None:
            # ... and, while it runs, newer progress (the other order) is written on its own.
            for room in reversed(ROOMS):
                store.record_handled(room, 2 * attempt + 2)
            await store.flush_progress()

        await asyncio.gather(store.store_transaction(f"txn{attempt}", f"fingerprint{attempt}", []),
                             flush_in_reverse())

    async with database.read() as connection:
        cursors = dict((await connection.execute(select(InboxCursor.queue_key, InboxCursor.done_through))).all())
    assert {room: cursors.get(room) for room in ROOMS} == dict.fromkeys(ROOMS, 20)
