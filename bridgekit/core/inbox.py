"""The durable inbox: homeserver transactions are stored before they are acknowledged.

``accept`` parses the body, stores the txnId and every entry in one database transaction, and
returns only after the commit; the caller answers 200 after that. Stored rows are then handed to
the per-room :class:`~bridgekit.core.dispatcher.RoomDispatcher`. Rows still pending at start-up
(acknowledged but not yet handled when the process stopped or crashed) are replayed first.

Handled rows are marked done in batches (one UPDATE per batch instead of one per event); a crash
between handling and the batch commit replays those few events, which is why everything a handler
does must be idempotent (Matrix sends use transaction IDs derived from the event, so a replay
cannot duplicate a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.core.transactions import InboxRow, parse_transaction_body, queue_key
from bridgekit.events import InvalidEvent, MatrixEvent, parse_client_event, parse_ephemeral_event
from bridgekit.store.inbox import InboxStore, PendingRow, now_ms
from bridgekit.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

EventHandler = Callable[[WorkItem], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AcceptResult:
    duplicate: bool
    stored: int
    rejected: int


class ProgressWriter:
    """Makes handling progress durable: it rides along with the next stored transaction's
    commit, and when no transaction comes, a write of its own follows after ``delay`` seconds."""

    def __init__(self, store: InboxStore, *, delay: float = 0.25) -> None:
        self._store = store
        self._delay = delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="inbox-progress-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._store.flush_progress()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._delay)
            try:
                await self._store.flush_progress()
            except Exception:
                # The progress stays queued for the next commit; worst case a restart replays
                # a few events, which handlers tolerate (they are idempotent).
                log.exception("recording inbox progress failed; will retry")
                await asyncio.sleep(1.0)


class Inbox:
    """Accepts transactions durably and feeds the ordered workers.

    Memory is bounded: at most ``max_queued`` events wait in the workers' queues. Past that,
    new events are only stored (they are durable already) and the inbox *spills*: it stops
    queueing, and refills from the database, in order, as the queues drain. The database is the
    queue; memory is a window onto it.
    """

    def __init__(
        self,
        store: InboxStore,
        handler: EventHandler,
        *,
        max_attempts: int = 5,
        retention_ms: int = 72 * 3600 * 1000,
        prune_interval: float = 3600.0,
        max_queued: int = 10_000,
        on_given_up: Callable[[WorkItem, BaseException], Awaitable[None]] | None = None,
        ignore: Callable[[MatrixEvent], bool] | None = None,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._ignore = ignore
        """Events that need no handling at all (the echoes of the bridge's own messages): not
        stored, so each costs no write. The transaction itself is still recorded."""
        self._handler = handler
        self._progress = ProgressWriter(store)
        self._queued_through = 0
        """The highest row id ever queued: every accepted row above it is in the database only."""
        self._spilled = True  # until start() has queued what the previous run left
        self._max_queued = max_queued
        self._refill_task: asyncio.Task[None] | None = None
        store.set_floor_source(self._handled_floor)
        self._dispatcher = RoomDispatcher(
            handler, on_done=self._on_done, on_failure=self._on_failure, max_attempts=max_attempts
        )
        self._retention_ms = retention_ms
        self._on_given_up = on_given_up
        self._prune_interval = prune_interval
        self._prune_task: asyncio.Task[None] | None = None
        self.handled = 0
        self.failed = 0

    @property
    def dispatcher(self) -> RoomDispatcher:
        return self._dispatcher

    @property
    def spilled(self) -> bool:
        """True while accepted events wait in the database only (the queues are full)."""
        return self._spilled

    async def start(self) -> int:
        """Queue the rows the previous run left unhandled (as many as fit), then start the
        background tasks. Returns how many rows were queued.

        Call before the first transaction is accepted, so replayed events keep their place
        ahead of new ones.
        """
        self._queued_through = await self._store.floor()
        replayed = await self._refill()
        if replayed:
            log.info("replaying %d inbox events left unhandled by the previous run", replayed)
        if self._spilled:
            self._start_refilling()
        self._progress.start()
        self._prune_task = asyncio.create_task(self._prune_loop(), name="inbox-pruner")
        return replayed

    async def accept(self, txn_id: str, body: bytes) -> AcceptResult:
        """Store a transaction durably. Raises ``BadTransaction`` for an unusable body."""
        arrived = time.monotonic()  # one clock read per transaction: the start of its events' latency
        parsed = parse_transaction_body(body)
        rows = parsed.rows
        ignore = self._ignore
        if ignore is not None:
            rows = [row for row in rows if not (isinstance(row.parsed, MatrixEvent) and ignore(row.parsed))]
            if not rows and parsed.rows:
                # Only echoes of the bridge's own messages: nothing to keep, not even the txnId
                # (a retry of it would be dropped just the same). Saves a commit per message.
                return AcceptResult(duplicate=False, stored=0, rejected=0)
        outcome = await self._store.store_transaction(txn_id, parsed.fingerprint, rows)
        if outcome.duplicate:
            log.info("transaction %s was already stored: acknowledged again, not reprocessed", txn_id)
            return AcceptResult(duplicate=True, stored=0, rejected=0)
        if outcome.reused_txn_id:
            log.warning(
                "transaction ID %s was used before for other events; processing it as new "
                "(was the homeserver's database reset?)", txn_id,
            )
        # No await between the commit above and this: stored order is handling order.
        items = _work_items(rows, outcome.row_ids, arrived)
        if outcome.row_ids and not self._spilled:
            if self._dispatcher.queued + len(items) <= self._max_queued:
                self._queue(items)
                # Rejected rows need no handling: the floor may pass them.
                self._queued_through = max(self._queued_through, *outcome.row_ids.values())
            else:
                log.warning(
                    "%d events are waiting to be handled; new events stay in the database until "
                    "the queues drain", self._dispatcher.queued,
                )
                self._spilled = True
                self._start_refilling()
        rejected = parsed.rejected
        for row in rejected:
            log.warning("transaction %s entry %d rejected and stored: %s", txn_id, row.seq, row.rejected)
        return AcceptResult(duplicate=False, stored=len(outcome.row_ids), rejected=len(rejected))

    def _queue(self, items: list[WorkItem]) -> None:
        if items:
            self._dispatcher.enqueue(items)
            self._queued_through = max(self._queued_through, items[-1].row_id)

    def _start_refilling(self) -> None:
        if self._refill_task is None or self._refill_task.done():
            self._refill_task = asyncio.create_task(self._refill_loop(), name="inbox-refill")

    async def _refill_loop(self) -> None:
        while self._spilled:
            await self._dispatcher.wait_queued_at_most(self._max_queued // 2)
            try:
                await self._refill()
            except Exception:
                log.exception("reading waiting events from the inbox failed; will retry")
                await asyncio.sleep(1.0)

    async def _refill(self) -> int:
        """Queue stored rows above ``_queued_through`` while there is room; stop spilling once
        the queues have caught up with the database."""
        queued = 0
        while self._spilled:
            room = self._max_queued - self._dispatcher.queued
            if room <= 0:
                return queued
            rows = await self._store.pending_after(self._queued_through, limit=room)
            if rows:
                self._queue([_work_item_from_pending(row) for row in rows])
                queued += len(rows)
            if len(rows) == room:
                continue
            # Caught up as of that read. With commits held, read once more and decide: nothing
            # can be stored between this last look and the switch back to queueing directly.
            async with self._store.commits_held():
                room = self._max_queued - self._dispatcher.queued
                rows = await self._store.pending_after(self._queued_through, limit=max(room, 0))
                if rows:
                    self._queue([_work_item_from_pending(row) for row in rows])
                    queued += len(rows)
                if len(rows) < room:
                    # Everything stored is queued or needs no handling (rejected rows).
                    self._queued_through = max(self._queued_through, await self._store.last_row_id())
                    self._spilled = False
        return queued

    async def prune_now(self) -> int:
        removed = await self._store.prune(now_ms() - self._retention_ms)
        if removed:
            log.info("pruned %d handled inbox rows older than the retention", removed)
        return removed

    async def stop(self, grace_seconds: float = 10.0) -> None:
        for task in (self._prune_task, self._refill_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._dispatcher.stop(grace_seconds)
        await self._progress.stop()

    def _handled_floor(self) -> int:
        """Every row up to this id is handled: just below the oldest row still queued, or the
        newest row queued when the queues are empty (rows only in the database are above it)."""
        oldest = self._dispatcher.oldest_queued_row_id()
        return self._queued_through if oldest is None else oldest - 1

    def _on_done(self, item: WorkItem) -> None:
        self.handled += 1
        self._store.record_handled(item.queue_key, item.row_id)

    async def _on_failure(self, item: WorkItem, error: BaseException, final: bool) -> None:
        if self._metrics is not None:
            self._metrics.failure("to_remote", error, final=final)
        if final:
            self.failed += 1
            log.error("giving up on inbox row %d after %d attempts: %r", item.row_id, item.attempts, error,
                      extra=item.log_ids())
        try:
            await self._store.record_attempt(item.row_id, repr(error), final=final)
        except Exception:
            log.exception("could not record the failed attempt of inbox row %d", item.row_id)
        if final:
            self._store.record_handled(item.queue_key, item.row_id)
            if self._on_given_up is not None:
                try:
                    await self._on_given_up(item, error)
                except Exception:
                    log.exception("could not report that inbox row %d was given up on", item.row_id)

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune_now()
            except Exception:
                log.exception("pruning the inbox failed; will try again")
            await asyncio.sleep(self._prune_interval)


def _work_items(rows: list[InboxRow], row_ids: dict[int, int], received_at: float) -> list[WorkItem]:
    items = []
    for row in rows:
        row_id = row_ids.get(row.seq)
        if row_id is None or row.rejected is not None:
            continue  # an event seen in an earlier transaction, or a rejected entry
        items.append(WorkItem(row_id, row.kind, queue_key(row.kind, row.room_id), row.parsed, received_at=received_at))
    return items


def _work_item_from_pending(row: PendingRow) -> WorkItem:
    payload = json.loads(row.payload)
    event: object
    try:
        if row.kind == "pdu":
            event = parse_client_event(payload)
        elif row.kind in ("ephemeral", "to_device"):
            event = parse_ephemeral_event(payload)
        else:
            event = payload
    except InvalidEvent:
        event = payload  # was valid when stored; keep going rather than lose it
    return WorkItem(row.id, row.kind, queue_key(row.kind, row.room_id), event, attempts=row.attempts)


__all__ = ["AcceptResult", "Inbox", "ProgressWriter"]
