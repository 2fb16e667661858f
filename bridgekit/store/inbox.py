"""SQL of the durable inbox: store a transaction in one database transaction, then track each row.

This is the hot path of the bridge (every homeserver transaction goes through
:meth:`InboxStore.store_transaction` before the 200 is sent), so it speaks SQLAlchemy Core with
multi-row statements: one look-up of the txnId, one insert of the txnId and one multi-row insert of
the events, then a single commit.
"""

from __future__ import annotations

import asyncio
import logging
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


async def _insert_rows_sqlite(driver: Any, txn_id: str, params: list[tuple[Any, ...]]) -> dict[int, int]:
    # Inside the single-writer transaction nobody else inserts, so the rows with an id above
    # the previous maximum are exactly the ones this statement inserted (duplicates are skipped).
    before = await driver.execute_fetchall("SELECT coalesce(max(id), 0) FROM inbox_event")
    await driver.executemany(_SQLITE_INSERT_ROWS, params)
    inserted = await driver.execute_fetchall(
        "SELECT seq, id FROM inbox_event WHERE id > ? AND txn_id = ?", (before[0][0], txn_id)
    )
    return {seq: row_id for seq, row_id in inserted}


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
        outcomes = []
        async with self._db.write() as conn:
            for request in batch:
                outcomes.append(await self._store_one(conn, request, received))
        return outcomes

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
        params = [
            (
                txn_id, row.seq, row.event_id, row.room_id, row.kind, row.payload,
                "pending" if row.rejected is None else "rejected", row.rejected,
                received, None if row.rejected is None else received,
            )
            for row in rows
        ]
        # The driver's own executemany, not SQLAlchemy's multi-VALUES rendering: one call into
        # C for all rows. This path carries every event the homeserver sends, and SQLAlchemy's
        # insertmanyvalues with RETURNING costs more than the fsync of the commit itself.
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if self._db.dialect == "postgresql":
            return await _insert_rows_postgresql(driver, txn_id, params)
        return await _insert_rows_sqlite(driver, txn_id, params)

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def mark_done(self, row_ids: Sequence[int]) -> None:
        if not row_ids:
            return
        async with self._db.write() as conn:
            await conn.execute(
                update(_EVENT)
                .where(_EVENT.c.id.in_(row_ids))
                .values(state="done", handled_at=now_ms())
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
        """Delete handled, failed and rejected rows (and old txnIds) older than the cut-off.

        Deletes in batches so a large backlog never holds the single SQLite writer for long.
        """
        removed = 0
        while True:
            async with self._db.write() as conn:
                victims = (
                    select(_EVENT.c.id)
                    .where(_EVENT.c.state != "pending", _EVENT.c.handled_at < older_than_ms)
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
