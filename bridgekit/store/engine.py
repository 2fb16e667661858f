"""The database handle: engines, write and read transactions, migrations at open.

:class:`Database` is the one object the rest of bridgekit uses to reach SQL. It hides the
differences between the two supported databases:

- SQLite (the default): exactly one writer connection, writes serialised by an asyncio lock and
  begun with ``BEGIN IMMEDIATE``, so "database is locked" cannot happen inside one process; a
  small pool of read-only reader connections runs beside it (WAL lets readers and the writer
  work at the same time). Every connection uses WAL, ``synchronous=FULL`` (a committed
  transaction survives power loss), ``busy_timeout`` and foreign keys.
- PostgreSQL (asyncpg): one pool, ordinary transactions, ``synchronous_commit=on``.

Opening applies the Alembic migrations to head and loads nothing else, so start-up stays fast
however large the tables are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState

from bridgekit.errors import StoreError
from bridgekit.store.migrate import upgrade_to_head

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite connection waits for another process's lock before failing."""

SQLITE_READER_POOL_SIZE = 4
"""Reader connections kept open on SQLite; reads are short, so a few suffice."""

SQLITE_CHECKPOINT_INTERVAL = 1.0
"""Seconds between the background WAL checkpoints."""

SQLITE_AUTOCHECKPOINT_PAGES = 10_000
"""A commit checkpoints by itself only past this many WAL pages (about 40 MB): a safety valve
for when the background checkpointer falls behind."""

SQLITE_INLINE_COMMIT_SECONDS = 0.001
"""A raw write transaction (:meth:`Database.sqlite_write`) runs on the event loop's own thread
while such transactions average less than this (a fast disk), so the loop never stalls longer
than about this per commit; slower ones go to the writer thread."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}",
)


class Database:
    """An open database: write and read transactions, and the dialect they speak.

    Create it with :meth:`open`; the constructor only assembles already-created engines.
    """

    def __init__(
        self,
        *,
        dialect: str,
        writer: AsyncEngine,
        reader: AsyncEngine,
        write_lock: asyncio.Lock | None,
        sqlite_path: str | None = None,
    ) -> None:
        self.dialect = dialect
        """``"sqlite"`` or ``"postgresql"``: what SQL the queries may use (upserts differ)."""
        self._writer = writer
        self._reader = reader
        self._write_lock = write_lock
        self._sqlite_path = sqlite_path
        self._raw_writer: sqlite3.Connection | None = None
        self._raw_thread: ThreadPoolExecutor | None = None
        self._commit_seconds = SQLITE_INLINE_COMMIT_SECONDS
        """Moving average of a raw write transaction's duration; starts on the writer thread."""
        self._checkpointer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> Database:
        """Connect to ``url``, apply the migrations to head (unless ``migrate`` is false), return.

        ``url`` is a SQLAlchemy URL: ``sqlite+aiosqlite:///path.db`` or
        ``postgresql+asyncpg://user@host/db``. ``pool_size`` sizes the PostgreSQL pool; SQLite
        always has one writer and a few readers. Raises :class:`StoreError` when the database
        cannot be reached or migrated.
        """
        parsed = _parse_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = _open_sqlite(parsed)
        elif parsed.get_backend_name() == "postgresql":
            database = _open_postgresql(parsed, pool_size)
        else:
            raise StoreError(
                f"unsupported database {parsed.get_backend_name()!r} in database.url: "
                "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
            )
        try:
            # Connecting once also checks the URL and credentials now, not at the first event.
            async with database.write() as connection:
                if migrate:
                    await connection.run_sync(upgrade_to_head)
        except (SQLAlchemyError, OSError) as error:
            await database.close()
            where = parsed.render_as_string(hide_password=True)
            raise StoreError(f"could not open the database {where}: {error}") from error
        except BaseException:
            await database.close()
            raise
        if database.dialect == "sqlite":
            database._start_checkpointer()
        return database

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction: committed on normal exit, rolled back on error."""
        async with self._write_lock or contextlib.nullcontext(), self._writer.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside a write transaction, with the same semantics as :meth:`write`.

        ``session.commit()`` inside the block only flushes: the transaction ends with the block.
        Objects stay usable afterwards (``expire_on_commit=False``; the models have no relationships
        that could load lazily).
        """
        # Imported here: the ORM costs 6-7 MB resident, and only connectors that use sessions pay it.
        from sqlalchemy.ext.asyncio import AsyncSession

        # The default join mode leaves the outer transaction to write(): the session flushes
        # into it and never commits it on its own.
        async with (
            self.write() as connection,
            AsyncSession(bind=connection, expire_on_commit=False) as session,
        ):
            yield session
            await session.flush()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a read-only transaction (one consistent snapshot)."""
        async with self._reader.connect() as connection:
            if self.dialect == "postgresql":
                # BEGIN READ ONLY: a write through read() is a bug, caught here at no cost.
                await connection.execution_options(postgresql_readonly=True)
            async with connection.begin():
                yield connection

    async def sqlite_write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite only: run ``work`` on a plain ``sqlite3`` connection inside one
        ``BEGIN IMMEDIATE`` ... ``COMMIT``, under the same single-writer lock as :meth:`write`:
        on the event loop's thread while commits are fast (see
        :data:`SQLITE_INLINE_COMMIT_SECONDS`), else in one trip to a dedicated thread.

        For the hottest path only (every homeserver transaction): each statement through the
        async engine is a round trip to the driver's thread plus SQLAlchemy's own work, which
        together cost several times the SQL itself. ``work`` may run in another thread: it must
        touch nothing but the connection it is given. Raising rolls the transaction back.
        """
        if self._sqlite_path is None or self._write_lock is None:
            raise StoreError("sqlite_write is for SQLite databases only")
        async with self._write_lock:
            if self._commit_seconds < SQLITE_INLINE_COMMIT_SECONDS:
                # The disk commits fast: run here, on the event loop's thread. The trip to the
                # writer thread and back (two thread wake-ups, contended for the GIL) cost more
                # than a fast commit itself, and every one-event transaction paid it.
                return self._timed_raw_transaction(work)
            if self._raw_thread is None:
                self._raw_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._raw_thread, self._timed_raw_transaction, work)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # Keep the writer lock until the thread has committed or rolled back, so no
                # other writer starts while this transaction is still open. Its outcome is
                # nobody's now: retrieved here, so a second cancellation (shutdown) leaves no
                # "Future exception was never retrieved" behind.
                done.add_done_callback(_discard_outcome)
                with contextlib.suppress(Exception):
                    await done
                raise

    def _timed_raw_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        started = time.perf_counter()
        try:
            return self._run_raw_transaction(work)
        finally:
            self._note_commit(time.perf_counter() - started)

    def _note_commit(self, seconds: float) -> None:
        """Keep a moving average of how long a raw write transaction takes (its fsync mostly):
        it decides where the next one runs. One slow commit on the loop is enough to move the
        next ones to the writer thread; they come back once commits are fast again."""
        self._commit_seconds += (seconds - self._commit_seconds) * 0.2

    def _run_raw_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._raw_writer
        if connection is None:
            assert self._sqlite_path is not None
            connection = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
            for pragma in _SQLITE_PRAGMAS:
                connection.execute(pragma)
            self._raw_writer = connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def _start_checkpointer(self) -> None:
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="sqlite-checkpointer")

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database file in the background.

        SQLite's default is that the commit which crosses 1,000 WAL pages does the checkpoint
        itself, fsyncs included: every few hundred transactions one acknowledgement waits for
        it, and intake slows as the tables grow. A PASSIVE checkpoint from its own connection
        waits for nobody and blocks nobody.
        """
        assert self._sqlite_path is not None
        connection = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            while True:
                await asyncio.sleep(SQLITE_CHECKPOINT_INTERVAL)
                try:
                    await asyncio.to_thread(connection.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:
                    logging.getLogger(__name__).warning("background WAL checkpoint failed: %s", error)
        finally:
            connection.close()

    async def close(self) -> None:
        """Close every connection. The object cannot be used afterwards."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
        raw, self._raw_writer = self._raw_writer, None
        if self._raw_thread is not None:
            if raw is not None:
                await asyncio.get_running_loop().run_in_executor(self._raw_thread, raw.close)
            self._raw_thread.shutdown(wait=True)
            self._raw_thread = None
        elif raw is not None:
            raw.close()


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as error:
        raise StoreError(f"database.url {url!r} is not a valid SQLAlchemy URL: {error}") from error


def _open_sqlite(url: URL) -> Database:
    if url.database in (None, "", ":memory:") or "memory" in str(url.query.get("mode", "")):
        raise StoreError(
            "an in-memory SQLite database cannot be shared by the writer and the readers: "
            "give database.url a file path, e.g. sqlite+aiosqlite:///bridgekit.db"
        )
    # pool_reset_on_return=None: the reset event below rolls back only when needed.
    writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_reset_on_return=None)
    _configure_sqlite(writer, begin="BEGIN IMMEDIATE", read_only=False)
    reader = create_async_engine(
        url, pool_size=SQLITE_READER_POOL_SIZE, max_overflow=0, pool_reset_on_return=None
    )
    # A deferred BEGIN takes no lock, so readers never wait for the writer.
    _configure_sqlite(reader, begin="BEGIN", read_only=True)
    return Database(
        dialect="sqlite", writer=writer, reader=reader, write_lock=asyncio.Lock(), sqlite_path=url.database
    )


def _configure_sqlite(engine: AsyncEngine, *, begin: str, read_only: bool) -> None:
    # SQLAlchemy's recipe for real transactions with sqlite3: stop the driver from emitting its
    # own (deferred, DML-only) BEGIN and emit ours, so the writer takes the write lock up front
    # (BEGIN IMMEDIATE) instead of failing with "database is locked" half-way through.
    pragmas = (*_SQLITE_PRAGMAS, "PRAGMA query_only=ON") if read_only else _SQLITE_PRAGMAS

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    def on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # The pool's default reset rolls back on every return, even right after a COMMIT: one
        # more trip to the driver's thread per transaction. Roll back only what is still open
        # (a transaction cut short by an error or a cancellation).
        if state.asyncio_safe and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
    event.listen(engine.sync_engine.pool, "reset", on_reset)


def _open_postgresql(url: URL, pool_size: int) -> Database:
    # synchronous_commit=on: a COMMIT returns only once the WAL is flushed, whatever the
    # server's default, because the inbox answers 200 to the homeserver right after it.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"server_settings": {"synchronous_commit": "on"}},
    )
    return Database(dialect="postgresql", writer=engine, reader=engine, write_lock=None)


def _discard_outcome(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()


__all__ = ["Database"]
