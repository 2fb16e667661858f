"""SQL of the durable inbox: store each homeserver transaction in one database transaction, and
record how far handling got.

Every transaction the homeserver sends passes through :meth:`InboxStore.store_transaction` before
the 200, so this is the bridge's hottest path. On SQLite it runs as plain ``sqlite3`` calls in one
trip to the writer thread (:meth:`Database.sqlite_write`); on PostgreSQL as a few statements on
the driver. Transactions that arrive while a commit runs are committed together (group commit).

Handled rows are not updated one by one. Handling is strictly ordered within a queue (a room), so
``inbox_cursor`` keeps one number per queue, "handled up to row N", plus a floor below which every
row is handled. The cursors are written with the next commit, whichever comes first: the next
stored transaction's, or a flush of their own. Only a final failure updates its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.store import inbox_sql as sql
from bridgekit.store.engine import Database
from bridgekit.store.tables import as_txn, inbox_cursor, inbox_event

log = logging.getLogger(__name__)

_TXN: Table = as_txn
_EVENT: Table = inbox_event
_CURSOR: Table = inbox_cursor

FLOOR_KEY = "*"
"""The cursor row whose ``done_through`` is the floor: every row at or below it is handled."""


class RowToStore(Protocol):
    """What :meth:`InboxStore.store_transaction` needs of a row (``core.transactions.InboxRow``)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def queue_key(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def room_id(self) -> str | None: ...
    @property
    def rejected(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    duplicate: bool
    """The same transaction was stored before: nothing was written."""
    reused_txn_id: bool
    """The txnId was seen before with other events (a homeserver whose database was reset)."""
    row_ids: dict[int, int]
    """seq -> inbox row id, for the rows that were inserted (events seen before are absent)."""


@dataclass(frozen=True, slots=True)
class _StoreRequest:
    txn_id: str
    fingerprint: str
    rows: Sequence[RowToStore]
    outcome: asyncio.Future[StoreOutcome]


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: int
    kind: str
    room_id: str | None
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class InboxCounts:
    pending: int
    done: int
    failed: int
    rejected: int


@dataclass(frozen=True, slots=True)
class _Progress:
    """Cursor positions waiting for a commit."""

    queues: dict[str, int]
    floor: int | None

    def __bool__(self) -> bool:
        return bool(self.queues) or self.floor is not None


def now_ms() -> int:
    return int(time.time() * 1000)


def storable_text(value: str) -> str:
    """``value`` as both databases can store it: PostgreSQL's text refuses NUL, and no UTF-8
    column takes a lone surrogate. Both become visible escapes (``\\x00``, ``\\ud800``)."""
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


# Accepted rows above the floor that their queue's cursor has not passed: what is still to do.
_PENDING_CONDITION = (
    "e.state = 'accepted' AND e.id > :floor "
    "AND e.id > coalesce((SELECT c.done_through FROM inbox_cursor c WHERE c.queue_key = e.queue_key), 0)"
)
# Joined from constants only; every value is a bound parameter.
_SELECT_PENDING = text(
    "SELECT e.id, e.kind, e.room_id, e.payload, e.attempts FROM inbox_event e "  # noqa: S608
    f"WHERE {_PENDING_CONDITION} AND e.id > :after ORDER BY e.id LIMIT :limit"
)
_COUNT_PENDING = text(f"SELECT count(*) FROM inbox_event e WHERE {_PENDING_CONDITION}")  # noqa: S608


def _row_parameters(txn_id: str, rows: Sequence[RowToStore], received: int) -> list[tuple[Any, ...]]:
    return [
        (
            txn_id, row.seq, row.event_id, row.room_id, row.kind, row.queue_key, row.payload,
            "accepted" if row.rejected is None else "rejected", row.rejected,
            received, None if row.rejected is None else received,
        )
        for row in rows
    ]


def _store_one_sqlite(connection: sqlite3.Connection, request: _StoreRequest, received: int) -> StoreOutcome:
    """The whole of one transaction's storage, run in the SQLite writer thread."""
    txn_id, fingerprint, rows = request.txn_id, request.fingerprint, request.rows
    seen = [row[0] for row in connection.execute(sql.SQLITE_SEEN_TXN, (txn_id,))]
    if fingerprint in seen:
        return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
    connection.execute(sql.SQLITE_INSERT_TXN, (txn_id, fingerprint, received, len(rows)))
    if not rows:
        return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids={})
    # Inside the single-writer transaction nobody else inserts, so the rows with an id above
    # the previous maximum are exactly the ones this statement inserted (duplicates are skipped).
    (before,) = connection.execute("SELECT coalesce(max(id), 0) FROM inbox_event").fetchone()
    changes_before = connection.total_changes
    connection.executemany(sql.SQLITE_INSERT_ROWS, _row_parameters(txn_id, rows, received))
    if connection.total_changes - changes_before == len(rows):
        # No event was a duplicate: SQLite gave the rows the next ids, in order.
        row_ids = {row.seq: before + offset for offset, row in enumerate(rows, start=1)}
    else:
        row_ids = dict(connection.execute("SELECT seq, id FROM inbox_event WHERE id > ?", (before,)).fetchall())
    return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids=row_ids)


def _advance_cursors_sqlite(connection: sqlite3.Connection, progress: _Progress) -> None:
    positions = list(progress.queues.items())
    if progress.floor is not None:
        positions.append((FLOOR_KEY, progress.floor))
    connection.executemany(sql.SQLITE_ADVANCE_CURSOR, positions)


class InboxStore:
    """Durable storage of homeserver transactions, and of how far handling got."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_StoreRequest] = []
        self._commit_lock = asyncio.Lock()
        self._progress: dict[str, int] = {}
        self._floor_source: Callable[[], int | None] = lambda: None

    # ---- storing ---------------------------------------------------------------------------

    async def store_transaction(
        self, txn_id: str, fingerprint: str, rows: Sequence[RowToStore]
    ) -> StoreOutcome:
        """Record the txnId and every row durably; return once committed.

        Events whose ``event_id`` is already stored (from an earlier transaction) are skipped.
        Transactions that arrive while a commit is in progress are committed together in the
        next database transaction (group commit: one fsync for all of them), each still
        all-or-nothing with respect to its own acknowledgement.
        """
        # The txnId comes from the request path, where %00 is legal: a retry maps to the same text.
        txn_id = storable_text(txn_id)
        request = _StoreRequest(txn_id, fingerprint, rows, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        async with self._commit_lock:
            if not request.outcome.done():
                batch, self._queue = self._queue, []
                try:
                    outcomes = await self._store_batch(batch)
                except BaseException as error:
                    # The others waiting in this batch get the error from their futures; this
                    # request raises it here (its own future would hold it unretrieved).
                    for waiting in batch:
                        if waiting is not request and not waiting.outcome.done():
                            waiting.outcome.set_exception(error)
                    raise
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    waiting.outcome.set_result(outcome)
        return request.outcome.result()

    async def _store_batch(self, batch: list[_StoreRequest]) -> list[StoreOutcome]:
        received = now_ms()
        # Handling progress rides along with this commit: no commit (no fsync, no writer-lock
        # hand-over) of its own.
        progress = self._take_progress()
        try:
            if self._db.dialect == "sqlite":
                def work(connection: sqlite3.Connection) -> list[StoreOutcome]:
                    outcomes = [_store_one_sqlite(connection, request, received) for request in batch]
                    _advance_cursors_sqlite(connection, progress)
                    return outcomes

                return await self._db.sqlite_write(work)
            outcomes = []
            async with self._db.write() as conn:  # noqa: SIM117 (the inner one needs conn)
                # SQLAlchemy's asyncpg adapter begins its transaction lazily, at its own first
                # statement; the driver's statements below would each commit by themselves (a
                # txnId stored without its events, then acknowledged as a duplicate on the
                # retry). One explicit driver transaction makes the batch all or nothing.
                async with (await _driver(conn)).transaction():
                    for request in batch:
                        outcomes.append(await self._store_one(conn, request, received))
                    await _advance_cursors_postgresql(conn, progress)
            return outcomes
        except BaseException:
            self._restore_progress(progress)
            raise

    async def _store_one(self, conn: AsyncConnection, request: _StoreRequest, received: int) -> StoreOutcome:
        # The driver itself, not SQLAlchemy: this path carries every event the homeserver sends,
        # and SQLAlchemy's per-statement work (and its multi-VALUES rendering of 100 rows) cost
        # more than the round trips. unnest() turns column arrays into rows: one statement.
        driver = await _driver(conn)
        txn_id, fingerprint, rows = request.txn_id, request.fingerprint, request.rows
        seen = [record[0] for record in await driver.fetch(sql.POSTGRESQL_SEEN_TXN, txn_id)]
        if fingerprint in seen:
            return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
        inserted = await driver.fetchval(sql.POSTGRESQL_INSERT_TXN, txn_id, fingerprint, received, len(rows))
        if inserted is None:  # a concurrent copy of the same transaction won the race
            return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
        row_ids: dict[int, int] = {}
        if rows:
            columns = list(zip(*_row_parameters(txn_id, rows, received), strict=True))
            records = await driver.fetch(sql.POSTGRESQL_INSERT_ROWS, *columns)
            row_ids = {record[0]: record[1] for record in records}
        return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids=row_ids)

    # ---- handling progress -----------------------------------------------------------------

    def set_floor_source(self, source: Callable[[], int | None]) -> None:
        """``source()`` tells, at commit time, the highest row id at or below which every row is
        handled (the inbox computes it from its queues), or None when it cannot say."""
        self._floor_source = source

    def record_handled(self, queue_key: str, row_id: int) -> None:
        """Row ``row_id`` of ``queue_key`` is handled (or given up on), and so is every earlier
        row of that queue. Written with the next commit; until then a crash replays it."""
        if row_id > self._progress.get(queue_key, 0):
            self._progress[queue_key] = row_id

    @property
    def progress_waiting(self) -> int:
        return len(self._progress)

    async def flush_progress(self) -> None:
        """Write the handling progress now, in a transaction of its own."""
        progress = self._take_progress()
        if not progress:
            return
        try:
            if self._db.dialect == "sqlite":
                await self._db.sqlite_write(lambda connection: _advance_cursors_sqlite(connection, progress))
                return
            async with self._db.write() as conn:
                await _advance_cursors_postgresql(conn, progress)
        except BaseException:
            self._restore_progress(progress)
            raise

    def _take_progress(self) -> _Progress:
        queues, self._progress = self._progress, {}
        return _Progress(queues, self._floor_source())

    def _restore_progress(self, progress: _Progress) -> None:
        for queue_key, row_id in progress.queues.items():
            self.record_handled(queue_key, row_id)

    async def record_attempt(self, row_id: int, error: str, *, final: bool) -> None:
        """Count a failed attempt; with ``final`` the row is given up on (state ``failed``)."""
        # The error may quote the event (a NUL in a body is legal JSON).
        values: dict[str, Any] = {"attempts": _EVENT.c.attempts + 1, "last_error": storable_text(error[:2000])}
        if final:
            values.update(state="failed", handled_at=now_ms())
        async with self._db.write() as conn:
            await conn.execute(update(_EVENT).where(_EVENT.c.id == row_id).values(**values))

    # ---- reading and pruning ---------------------------------------------------------------

    async def floor(self) -> int:
        """The persisted floor: every row at or below it is handled."""
        async with self._db.read() as conn:
            value = (
                await conn.execute(select(_CURSOR.c.done_through).where(_CURSOR.c.queue_key == FLOOR_KEY))
            ).scalar()
        return int(value or 0)

    async def last_row_id(self) -> int:
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(_EVENT.c.id), 0)))).scalar_one())

    async def pending_after(self, after: int, *, limit: int) -> list[PendingRow]:
        """Up to ``limit`` rows still to handle with an id above ``after``, in arrival order."""
        if limit <= 0:
            return []
        async with self._db.read() as conn:
            page = (await conn.execute(_SELECT_PENDING, {"floor": 0, "after": after, "limit": limit})).all()
        return [PendingRow(row.id, row.kind, row.room_id, row.payload, row.attempts) for row in page]

    @contextlib.asynccontextmanager
    async def commits_held(self) -> AsyncIterator[None]:
        """No transaction is stored while inside (stores wait, in order, and go on after)."""
        async with self._commit_lock:
            yield

    async def pending(self, *, page_size: int = 1000) -> AsyncIterator[PendingRow]:
        """Every row still to handle, in arrival order, read page by page (start-up replay).

        Reads only above the floor, so its cost follows the backlog, not the table."""
        floor = await self.floor()
        after = floor
        while True:
            async with self._db.read() as conn:
                page = (
                    await conn.execute(_SELECT_PENDING, {"floor": floor, "after": after, "limit": page_size})
                ).all()
            for row in page:
                yield PendingRow(row.id, row.kind, row.room_id, row.payload, row.attempts)
            if len(page) < page_size:
                return
            after = page[-1].id

    async def prune(self, older_than_ms: int, *, batch: int = 5000) -> int:
        """Delete handled, failed and rejected rows (and old txnIds) that arrived before the
        cut-off. Rows above the floor are kept, however old: they may still be pending."""
        # The newest row is never deleted: SQLite numbers a new row max(id) + 1, so deleting it
        # would hand its id (and the ids below) out again, under the floor and the cursors.
        floor = min(await self.floor(), await self.last_row_id() - 1)
        removed = 0
        while True:
            async with self._db.write() as conn:
                victims = (
                    select(_EVENT.c.id)
                    .where(_EVENT.c.received_at < older_than_ms, _EVENT.c.id <= floor)
                    .limit(batch)
                    .scalar_subquery()
                )
                result = await conn.execute(delete(_EVENT).where(_EVENT.c.id.in_(victims)))
                count = result.rowcount or 0
            removed += count
            if count < batch:
                break
        async with self._db.write() as conn:
            await conn.execute(delete(_TXN).where(_TXN.c.received_at < older_than_ms))
            # Queue cursors at or below the floor say nothing the floor does not.
            await conn.execute(
                delete(_CURSOR).where(_CURSOR.c.queue_key != FLOOR_KEY, _CURSOR.c.done_through <= floor)
            )
        return removed

    async def counts(self) -> InboxCounts:
        floor = await self.floor()
        async with self._db.read() as conn:
            grouped = await conn.execute(select(_EVENT.c.state, func.count()).group_by(_EVENT.c.state))
            by_state: dict[str, int] = {state: count for state, count in grouped.all()}
            pending = (await conn.execute(_COUNT_PENDING, {"floor": floor})).scalar_one()
        accepted = by_state.get("accepted", 0)
        return InboxCounts(
            pending=pending,
            done=accepted - pending,
            failed=by_state.get("failed", 0),
            rejected=by_state.get("rejected", 0),
        )


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (for the hot path's own statements)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _advance_cursors_postgresql(conn: AsyncConnection, progress: _Progress) -> None:
    positions = list(progress.queues.items())
    if progress.floor is not None:
        positions.append((FLOOR_KEY, progress.floor))
    # A commit's progress and the progress writer's own transaction may upsert the same cursors
    # at once (PostgreSQL has no single writer): in one order, by key, each waits for the other
    # instead of deadlocking, which answered the homeserver 503.
    positions.sort()
    if positions:
        await (await _driver(conn)).executemany(sql.POSTGRESQL_ADVANCE_CURSOR, positions)


__all__ = ["FLOOR_KEY", "InboxCounts", "InboxStore", "PendingRow", "StoreOutcome", "now_ms", "storable_text"]
