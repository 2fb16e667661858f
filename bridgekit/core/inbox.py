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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.core.transactions import InboxRow, parse_transaction_body, queue_key
from bridgekit.events import InvalidEvent, parse_client_event, parse_ephemeral_event
from bridgekit.store.inbox import InboxStore, PendingRow, now_ms

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
    """Accepts transactions durably and feeds the ordered workers."""

    def __init__(
        self,
        store: InboxStore,
        handler: EventHandler,
        *,
        max_attempts: int = 5,
        retention_ms: int = 72 * 3600 * 1000,
        prune_interval: float = 3600.0,
    ) -> None:
        self._store = store
        self._handler = handler
        self._progress = ProgressWriter(store)
        self._last_row_id = 0
        store.set_floor_source(self._handled_floor)
        self._dispatcher = RoomDispatcher(
            handler, on_done=self._on_done, on_failure=self._on_failure, max_attempts=max_attempts
        )
        self._retention_ms = retention_ms
        self._prune_interval = prune_interval
        self._prune_task: asyncio.Task[None] | None = None
        self.handled = 0
        self.failed = 0

    @property
    def dispatcher(self) -> RoomDispatcher:
        return self._dispatcher

    async def start(self) -> int:
        """Replay rows left pending by the previous run, then start the background tasks.

        Returns how many rows were replayed. Call before the first transaction is accepted, so
        replayed events keep their place ahead of new ones.
        """
        self._last_row_id = await self._store.last_row_id()
        replayed = 0
        async for row in self._store.pending():
            self._dispatcher.enqueue([_work_item_from_pending(row)])
            replayed += 1
        if replayed:
            log.info("replaying %d inbox events left pending by the previous run", replayed)
        self._progress.start()
        self._prune_task = asyncio.create_task(self._prune_loop(), name="inbox-pruner")
        return replayed

    async def accept(self, txn_id: str, body: bytes) -> AcceptResult:
        """Store a transaction durably. Raises ``BadTransaction`` for an unusable body."""
        parsed = parse_transaction_body(body)
        outcome = await self._store.store_transaction(txn_id, parsed.fingerprint, parsed.rows)
        if outcome.duplicate:
            log.info("transaction %s was already stored: acknowledged again, not reprocessed", txn_id)
            return AcceptResult(duplicate=True, stored=0, rejected=0)
        if outcome.reused_txn_id:
            log.warning(
                "transaction ID %s was used before for other events; processing it as new "
                "(was the homeserver's database reset?)", txn_id,
            )
        # No await between the commit above and this enqueue: stored order is handling order.
        self._dispatcher.enqueue(_work_items(parsed.rows, outcome.row_ids))
        if outcome.row_ids:
            self._last_row_id = max(self._last_row_id, *outcome.row_ids.values())
        rejected = parsed.rejected
        for row in rejected:
            log.warning("transaction %s entry %d rejected and stored: %s", txn_id, row.seq, row.rejected)
        return AcceptResult(duplicate=False, stored=len(outcome.row_ids), rejected=len(rejected))

    async def prune_now(self) -> int:
        removed = await self._store.prune(now_ms() - self._retention_ms)
        if removed:
            log.info("pruned %d handled inbox rows older than the retention", removed)
        return removed

    async def stop(self, grace_seconds: float = 10.0) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
        await self._dispatcher.stop(grace_seconds)
        await self._progress.stop()

    def _handled_floor(self) -> int:
        """Every row up to this id is handled: just below the oldest row still queued, or the
        newest row stored when nothing is queued."""
        oldest = self._dispatcher.oldest_queued_row_id()
        return self._last_row_id if oldest is None else oldest - 1

    def _on_done(self, item: WorkItem) -> None:
        self.handled += 1
        self._store.record_handled(item.queue_key, item.row_id)

    async def _on_failure(self, item: WorkItem, error: BaseException, final: bool) -> None:
        if final:
            self.failed += 1
            log.error("giving up on inbox row %d after %d attempts: %r", item.row_id, item.attempts, error)
        try:
            await self._store.record_attempt(item.row_id, repr(error), final=final)
        except Exception:
            log.exception("could not record the failed attempt of inbox row %d", item.row_id)
        if final:
            self._store.record_handled(item.queue_key, item.row_id)

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune_now()
            except Exception:
                log.exception("pruning the inbox failed; will try again")
            await asyncio.sleep(self._prune_interval)


def _work_items(rows: list[InboxRow], row_ids: dict[int, int]) -> list[WorkItem]:
    items = []
    for row in rows:
        row_id = row_ids.get(row.seq)
        if row_id is None or row.rejected is not None:
            continue  # an event seen in an earlier transaction, or a rejected entry
        items.append(WorkItem(row_id, row.kind, queue_key(row.kind, row.room_id), row.parsed))
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
