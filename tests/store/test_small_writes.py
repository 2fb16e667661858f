"""SQLite's small writes: one homeserver transaction alone commits on the event loop's own thread
(``Database.sqlite_write(small=True)``), with the same commit, and never makes the loop wait for
another process's write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from bridgekit.store import Database
from bridgekit.store.inbox import InboxStore


def _insert_portal(connection: sqlite3.Connection) -> int:
    connection.execute("INSERT INTO portal (network, remote_id, created_at) VALUES ('irc', '#a', 1)")
    return threading.get_ident()


async def test_a_small_write_is_committed_on_the_loops_thread_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        ran_in = await db.sqlite_write(_insert_portal, small=True)
        assert ran_in == threading.get_ident()  # no hand-over to the writer thread
        # Committed: another connection sees the row at once.
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT remote_id FROM portal").fetchall() == [("#a",)]
        finally:
            other.close()
    finally:
        await db.close()


async def test_a_small_write_waits_for_another_process_in_the_writer_thread_not_on_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer (a process) holds the lock
        write = asyncio.create_task(db.sqlite_write(_insert_portal, small=True))
        ticks = 0
        while ticks < 20:  # the loop keeps running while the write waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert not write.done()
        other.execute("ROLLBACK")
        ran_in = await asyncio.wait_for(write, 10)
        assert ran_in != threading.get_ident()  # it went to the writer thread to wait
        count = other.execute("SELECT count(*) FROM portal").fetchone()
        assert count == (1,)
    finally:
        other.close()
        await db.close()


async def test_transactions_that_arrive_together_share_one_commit(tmp_path: Path) -> None:
    """Group commit still applies: the first transaction yields once before committing, so the
    others that came in the same moment join it (and none commits alone on the loop)."""
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
    commits = 0
    real = db.sqlite_write

    async def counting(work, *, small=False):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        return await real(work, small=small)

    db.sqlite_write = counting  # type: ignore[method-assign]
    try:
        store = InboxStore(db)
        outcomes = await asyncio.gather(*(store.store_transaction(f"t{n}", f"f{n}", []) for n in range(4)))
        assert [outcome.duplicate for outcome in outcomes] == [False] * 4
        assert commits == 1
    finally:
        await db.close()
