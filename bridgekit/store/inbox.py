"""SQL of the durable inbox: store a transaction in one database transaction, then track each row.

This is the hot path of the bridge (every homeserver transaction goes through
:meth:`InboxStore.store_transaction` before the 200 is sent), so it speaks SQLAlchemy Core with
multi-row statements: one look-up of the txnId, one insert of the txnId and one multi-row insert of
the events, then a single commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridgekit.store.engine import Database
from bridgekit.store.models import AsTxn, InboxEvent

log = logging.getLogger(__name__)

_TXN: Table = AsTxn.__table__  # type: ignore[assignment]
_EVENT: Table = InboxEvent.__table__  # type: ignore[assignment]


class RowToStore(Protocol):
    """What :meth:`InboxStore.store_transaction` needs of a row (``core.transactions.InboxRow``)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
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


# Written out in full (no string building): the only values are bound parameters.
_SQLITE_SEEN_TXN = "SELECT fingerprint FROM as_txn WHERE txn_id = ?"
_SQLITE_INSERT_TXN = (
    "INSERT INTO as_txn (txn_id, fingerprint, received_at, event_count) VALUES (?, ?, ?, ?)"
)
_SQLITE_MARK_DONE = "UPDATE inbox_event SET state = 'done', handled_at = ? WHERE id = ?"
_SQLITE_INSERT_ROWS = (
    "INSERT INTO inbox_event (txn_id, seq, event_id, room_id, kind, payload, state, last_error, "
    "received_at, handled_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_POSTGRESQL_INSERT_ROWS = (
    "INSERT INTO inbox_event (txn_id, seq, event_id, room_id, kind, payload, state, last_error, "
    "received_at, handled_at, attempts) "
    "SELECT *, 0 FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], "
    "$6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[]) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING seq, id"
)


def _store_one_sqlite(connection: sqlite3.Connection, request: _StoreRequest, received: int) -> StoreOutcome:
    """The whole of one transaction's storage, run in the SQLite writer thread."""
    txn_id, fingerprint, rows = request.txn_id, request.fingerprint, request.rows
    seen = [row[0] for row in connection.execute(_SQLITE_SEEN_TXN, (txn_id,))]
    if fingerprint in seen:
        return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
    connection.execute(_SQLITE_INSERT_TXN, (txn_id, fingerprint, received, len(rows)))
    if not rows:
        return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids={})
    # Inside the single-writer transaction nobody else inserts, so the rows with an id above
    # the previous maximum are exactly the ones this statement inserted (duplicates are skipped).
    (before,) = connection.execute("SELECT coalesce(max(id), 0) FROM inbox_event").fetchone()
    connection.executemany(_SQLITE_INSERT_ROWS, _row_parameters(txn_id, rows, received))
    inserted = connection.execute("SELECT seq, id FROM inbox_event WHERE id > ?", (before,))
    return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids=dict(inserted.fetchall()))


def _mark_done_sqlite(connection: sqlite3.Connection, row_ids: Sequence[int], handled_at: int) -> None:
    connection.executemany(_SQLITE_MARK_DONE, [(handled_at, row_id) for row_id in row_ids])


def _row_parameters(txn_id: str, rows: Sequence[RowToStore], received: int) -> list[tuple[Any, ...]]:
    return [
        (
            txn_id, row.seq, row.event_id, row.room_id, row.kind, row.payload,
            "pending" if row.rejected is None else "rejected", row.rejected,
            received, None if row.rejected is None else received,
        )
        for row in rows
    ]


async def _insert_rows_postgresql(driver: Any, txn_id: str, params: list[tuple[Any, ...]]) -> dict[int, int]:
    # unnest() turns column arrays into rows: one statement, one round trip, any row count.
    columns = list(zip(*params, strict=True))
    rows = await driver.fetch(_POSTGRESQL_INSERT_ROWS, *columns)
    return {record["seq"]: record["id"] for record in rows}


def now_ms() -> int:
    return int(time.time() * 1000)


class InboxStore:
    """Durable storage of homeserver transactions and their events."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_StoreRequest] = []
        self._commit_lock = asyncio.Lock()
        self._done: list[int] = []

    async def store_transaction(
        self, txn_id: str, fingerprint: str, rows: Sequence[RowToStore]
    ) -> StoreOutcome:
        """Record the txnId and every row durably; return once committed.

        Events whose ``event_id`` is already stored (from an earlier transaction) are skipped.
        Transactions that arrive while a commit is in progress are committed together in the
        next database transaction (group commit: one fsync for all of them), each still
        all-or-nothing with respect to its own acknowledgement.
        """
        request = _StoreRequest(txn_id, fingerprint, rows, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        async with self._commit_lock:
            if not request.outcome.done():
                batch, self._queue = self._queue, []
                try:
                    outcomes = await self._store_batch(batch)
                except BaseException as error:
                    for waiting in batch:
                        if not waiting.outcome.done():
                            waiting.outcome.set_exception(error)
                    raise
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    waiting.outcome.set_result(outcome)
        return request.outcome.result()

    async def _store_batch(self, batch: list[_StoreRequest]) -> list[StoreOutcome]:
        received = now_ms()
        # Rows handled since the last commit are marked done in the same database transaction:
        # no commit (and no fsync, no writer-lock hand-over) of their own.
        done, self._done = self._done, []
        try:
            if self._db.dialect == "sqlite":
                def work(connection: sqlite3.Connection) -> list[StoreOutcome]:
                    outcomes = [_store_one_sqlite(connection, request, received) for request in batch]
                    _mark_done_sqlite(connection, done, received)
                    return outcomes

                return await self._db.sqlite_write(work)
            outcomes = []
            async with self._db.write() as conn:
                for request in batch:
                    outcomes.append(await self._store_one(conn, request, received))
                await self._mark_done_with(conn, done, received)
            return outcomes
        except BaseException:
            self._done[:0] = done
            raise

    async def _store_one(self, conn: AsyncConnection, request: _StoreRequest, received: int) -> StoreOutcome:
        txn_id, fingerprint, rows = request.txn_id, request.fingerprint, request.rows
        seen = (
            await conn.execute(select(_TXN.c.fingerprint).where(_TXN.c.txn_id == txn_id))
        ).scalars().all()
        if fingerprint in seen:
            return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
        inserted = await conn.execute(
            self._insert(_TXN)
            .values(txn_id=txn_id, fingerprint=fingerprint, received_at=received, event_count=len(rows))
            .on_conflict_do_nothing()
            .returning(_TXN.c.id)
        )
        if inserted.first() is None:  # a concurrent copy of the same transaction won the race
            return StoreOutcome(duplicate=True, reused_txn_id=False, row_ids={})
        row_ids = await self._insert_rows(conn, txn_id, rows, received) if rows else {}
        return StoreOutcome(duplicate=False, reused_txn_id=bool(seen), row_ids=row_ids)

    async def _insert_rows(
        self, conn: AsyncConnection, txn_id: str, rows: Sequence[RowToStore], received: int
    ) -> dict[int, int]:
        # The driver itself, not SQLAlchemy's multi-VALUES rendering: this path carries every
        # event the homeserver sends, and insertmanyvalues with RETURNING costs more than the
        # commit itself.
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        return await _insert_rows_postgresql(driver, txn_id, _row_parameters(txn_id, rows, received))

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    def queue_done(self, row_id: int) -> None:
        """Remember that a row was handled; it is marked done with the next commit (the next
        stored transaction's, or :meth:`flush_done`'s). Until then a crash replays it."""
        self._done.append(row_id)

    @property
    def done_waiting(self) -> int:
        return len(self._done)

    async def flush_done(self) -> None:
        """Mark the queued handled rows done now, in a transaction of their own."""
        if not self._done:
            return
        done, self._done = self._done, []
        handled_at = now_ms()
        try:
            if self._db.dialect == "sqlite":
                await self._db.sqlite_write(lambda connection: _mark_done_sqlite(connection, done, handled_at))
                return
            async with self._db.write() as conn:
                await self._mark_done_with(conn, done, handled_at)
        except BaseException:
            self._done[:0] = done
            raise

    async def mark_done(self, row_ids: Sequence[int]) -> None:
        for row_id in row_ids:
            self.queue_done(row_id)
        await self.flush_done()

    async def _mark_done_with(self, conn: AsyncConnection, row_ids: Sequence[int], handled_at: int) -> None:
        if row_ids:
            await conn.execute(
                update(_EVENT).where(_EVENT.c.id.in_(row_ids)).values(state="done", handled_at=handled_at)
            )

    async def record_attempt(self, row_id: int, error: str, *, final: bool) -> None:
        """Count a failed attempt; with ``final`` the row is given up on (state ``failed``)."""
        values: dict[str, Any] = {"attempts": _EVENT.c.attempts + 1, "last_error": error[:2000]}
        if final:
            values.update(state="failed", handled_at=now_ms())
        async with self._db.write() as conn:
            await conn.execute(update(_EVENT).where(_EVENT.c.id == row_id).values(**values))

    async def pending(self, *, page_size: int = 1000) -> AsyncIterator[PendingRow]:
        """Every pending row in arrival order, read page by page (start-up replay)."""
        after = 0
        while True:
            async with self._db.read() as conn:
                page = (
                    await conn.execute(
                        select(
                            _EVENT.c.id,
                            _EVENT.c.kind,
                            _EVENT.c.room_id,
                            _EVENT.c.payload,
                            _EVENT.c.attempts,
                        )
                        .where(_EVENT.c.state == "pending", _EVENT.c.id > after)
                        .order_by(_EVENT.c.id)
                        .limit(page_size)
                    )
                ).all()
            for row in page:
                yield PendingRow(row.id, row.kind, row.room_id, row.payload, row.attempts)
            if len(page) < page_size:
                return
            after = page[-1].id

    async def prune(self, older_than_ms: int, *, batch: int = 5000) -> int:
        """Delete handled, failed and rejected rows (and old txnIds) that arrived before the
        cut-off. Pending rows are never deleted, however old.

        Deletes in batches so a large backlog never holds the single SQLite writer for long.
        """
        removed = 0
        while True:
            async with self._db.write() as conn:
                victims = (
                    select(_EVENT.c.id)
                    .where(_EVENT.c.received_at < older_than_ms, _EVENT.c.state != "pending")
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
        return removed

    async def counts(self) -> InboxCounts:
        async with self._db.read() as conn:
            rows = (
                await conn.execute(select(_EVENT.c.state, func.count()).group_by(_EVENT.c.state))
            ).all()
        by_state = {state: count for state, count in rows}
        return InboxCounts(
            pending=by_state.get("pending", 0),
            done=by_state.get("done", 0),
            failed=by_state.get("failed", 0),
            rejected=by_state.get("rejected", 0),
        )


__all__ = ["InboxCounts", "InboxStore", "PendingRow", "StoreOutcome", "now_ms"]
