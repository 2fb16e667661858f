"""Database: opening, write and read transactions, durability, concurrency, on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.errors import StoreError
from bridgekit.store import Database, KeyValue, Portal, engine
from tests.store.bulk import populate_portals_and_ghosts


def _portal(remote_id: str) -> dict[str, object]:
    return {"network": "irc", "remote_id": remote_id, "created_at": 1}


async def _count_portals(db: Database) -> int:
    async with db.read() as connection:
        return int((await connection.execute(select(func.count()).select_from(Portal))).scalar_one())


async def test_a_committed_write_survives_close_and_reopen(database_url: str) -> None:
    db = await Database.open(database_url)
    async with db.write() as connection:
        await connection.execute(insert(Portal), [_portal("#a"), _portal("#b")])
    await db.close()

    db = await Database.open(database_url)
    try:
        async with db.read() as connection:
            rows = (await connection.execute(select(Portal.remote_id).order_by(Portal.id))).all()
        assert [row.remote_id for row in rows] == ["#a", "#b"]
    finally:
        await db.close()


async def test_write_rolls_back_on_exception_and_stays_usable(database: Database) -> None:
    async def failing_handler() -> None:
        async with database.write() as connection:
            await connection.execute(insert(Portal), [_portal("#lost")])
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await failing_handler()
    assert await _count_portals(database) == 0

    async with database.write() as connection:
        await connection.execute(insert(Portal), [_portal("#kept")])
    assert await _count_portals(database) == 1


async def test_a_cancelled_write_is_rolled_back_and_releases_the_writer(database: Database) -> None:
    # An HTTP handler is cancelled when its client goes away, possibly mid-transaction.
    inside = asyncio.Event()
    never = asyncio.Event()

    async def handler() -> None:
        async with database.write() as connection:
            await connection.execute(insert(Portal), [_portal("#cancelled")])
            inside.set()
            await never.wait()

    task = asyncio.create_task(handler())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with database.write() as connection:
        await connection.execute(insert(Portal), [_portal("#next")])
    async with database.read() as connection:
        assert (await connection.execute(select(Portal.remote_id))).scalars().all() == ["#next"]


async def test_integer_keys_are_assigned_by_the_database(database: Database) -> None:
    async with database.write() as connection:
        first = (await connection.execute(insert(Portal).returning(Portal.id), [_portal("#1")])).scalar_one()
        second = (await connection.execute(insert(Portal).returning(Portal.id), [_portal("#2")])).scalar_one()
    assert second > first > 0


async def test_write_session_commits_on_exit_and_rolls_back_on_error(database: Database) -> None:
    async with database.write_session() as session:
        portal = Portal(network="irc", remote_id="#orm", created_at=1, meta={"k": "v"})
        session.add(portal)
        await session.commit()  # only flushes: the block owns the transaction
    assert portal.id is not None
    assert portal.meta == {"k": "v"}  # still readable: expire_on_commit=False

    async def failing_handler() -> None:
        async with database.write_session() as session:
            session.add(Portal(network="irc", remote_id="#gone", created_at=1))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_handler()
    assert await _count_portals(database) == 1


async def test_read_sees_committed_writes_and_refuses_to_write(database: Database) -> None:
    async with database.write() as connection:
        await connection.execute(insert(KeyValue), [{"network": "irc", "key": "k", "value": 1}])
    async with database.read() as connection:
        assert (await connection.execute(select(KeyValue.value))).scalar_one() == 1
    with pytest.raises(DBAPIError):
        async with database.read() as connection:
            await connection.execute(insert(KeyValue), [{"network": "irc", "key": "x", "value": 2}])


async def test_concurrent_writers_never_fail(database: Database) -> None:
    # SQLite's classic failure is "database is locked" when two writers overlap; here 20 tasks
    # write and read at once and every write must land.
    async def writer(task: int) -> None:
        for i in range(10):
            async with database.write() as connection:
                await connection.execute(insert(Portal), [_portal(f"#t{task}-{i}")])
            await _count_portals(database)

    await asyncio.gather(*(writer(task) for task in range(20)))
    assert await _count_portals(database) == 200


async def test_two_databases_on_one_sqlite_file_wait_for_each_other(tmp_path: Path) -> None:
    # Like a second process (a CLI command) writing while the bridge runs: BEGIN IMMEDIATE plus
    # busy_timeout make one wait for the other instead of failing.
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    first = await Database.open(url)
    second = await Database.open(url)
    try:

        async def writer(db: Database, name: str) -> None:
            for i in range(20):
                async with db.write() as connection:
                    await connection.execute(insert(Portal), [_portal(f"#{name}{i}")])

        await asyncio.gather(writer(first, "a"), writer(second, "b"))
        assert await _count_portals(first) == 40
    finally:
        await first.close()
        await second.close()


async def test_open_is_quick_with_many_portals_and_ghosts(database_url: str) -> None:
    db = await Database.open(database_url)
    await populate_portals_and_ghosts(db, 10_000)
    await db.close()

    # Opening must not load tables; the timing itself belongs to the benchmark.
    db = await Database.open(database_url)
    try:
        async with db.write() as connection:
            await connection.execute(insert(Portal), [_portal("#after-restart")])
        assert await _count_portals(db) == 10_001
    finally:
        await db.close()


async def test_unusable_urls_raise_store_errors_that_say_what_to_do() -> None:
    with pytest.raises(StoreError, match="file path"):
        await Database.open("sqlite+aiosqlite:///:memory:")
    with pytest.raises(StoreError, match="unsupported database"):
        await Database.open("mysql+aiomysql://user@127.0.0.1/db")
    with pytest.raises(StoreError, match="not a valid SQLAlchemy URL"):
        await Database.open("not a url")
    with pytest.raises(StoreError, match="could not open the database"):
        await Database.open("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")


async def test_commits_are_durable(database: Database) -> None:
    # The inbox answers 200 right after COMMIT: the commit must be on disk by then.
    if database.dialect == "postgresql":
        async with database.read() as connection:
            setting = (await connection.exec_driver_sql("SHOW synchronous_commit")).scalar_one()
        assert setting == "on"
        return
    async with database.write() as writer, database.read() as reader:
        for connection in (writer, reader):
            assert await _pragma(connection, "journal_mode") == "wal"
            assert await _pragma(connection, "synchronous") == 2  # FULL
            assert await _pragma(connection, "busy_timeout") == 5000
            assert await _pragma(connection, "foreign_keys") == 1
        assert await _pragma(reader, "query_only") == 1


async def test_a_sqlite_write_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with db.write():
            # Nothing written yet, but BEGIN IMMEDIATE already holds the lock.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        await db.close()


async def _pragma(connection: AsyncConnection, name: str) -> object:
    return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()


async def test_sqlite_writes_run_on_the_loop_while_fast_and_move_to_a_thread_when_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Fast" is 20 ms here, so that a busy disk under the test suite still counts as fast.
    monkeypatch.setattr(engine, "SQLITE_INLINE_COMMIT_SECONDS", 0.02)
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def work(delay: float) -> Callable[[sqlite3.Connection], None]:
        def run(connection: sqlite3.Connection) -> None:
            ran_on.append(threading.get_ident())
            connection.execute("INSERT INTO kv (network, key, value) VALUES ('t', ?, '1')", (str(len(ran_on)),))
            time.sleep(delay)  # stands for a slow fsync
        return run

    try:
        await db.sqlite_write(work(0))
        assert ran_on[-1] != loop_thread, "the first commit runs on the writer thread (nothing measured yet)"
        for _ in range(5):
            await db.sqlite_write(work(0))
        assert ran_on[-1] == loop_thread, "fast commits run on the event loop's thread"
        await db.sqlite_write(work(0.2))
        await db.sqlite_write(work(0))
        assert ran_on[-1] != loop_thread, "after a slow commit the next one leaves the loop"
        for _ in range(30):
            await db.sqlite_write(work(0))
        assert ran_on[-1] == loop_thread, "fast again: back on the loop"
        async with db.read() as connection:
            stored = (await connection.exec_driver_sql("SELECT count(*) FROM kv WHERE network = 't'")).scalar_one()
        assert stored == len(ran_on)
    finally:
        await db.close()
