"""Ordered per-room workers for the inbox.

Events of one room are handled strictly one after another, in arrival order; different rooms run
in parallel, so a slow or failing room never holds up the others. A worker task exists only while
its room has work: an idle bridge with 10,000 portals holds no tasks.

A handler that raises is retried with capped backoff (the room waits: order matters more than
speed); after ``max_attempts`` the event is given up on, recorded as failed and the room moves on.

A handler may also leave a delivery running (:func:`defer_done`): a message accepted by a
connector that is still on its way (IRC's output pacing). The room's worker moves on to the next
event, but the event counts as handled (``on_done``) only once its delivery has finished and every
earlier event of the room is handled: handling progress is one number per room, so it never
passes an event still on its way, and a crash replays it. A delivery that fails gives the event
up (``on_failure``, final): the room has moved on, so it cannot be retried in order.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkItem:
    """One stored inbox row waiting to be handled."""

    row_id: int
    kind: str
    queue_key: str
    """Rows with the same key are handled in order: the room ID, or a key per non-room kind."""
    event: Any
    attempts: int = 0
    received_at: float = 0.0
    """When it reached the bridge (``time.monotonic()``), for the latency metrics; 0: not known
    (replayed from the database after a restart)."""

    def log_ids(self) -> dict[str, object]:
        """What identifies it in a structured log record (``extra=``): the row, and the Matrix
        event ID or the remote event's idempotency key when the item has one."""
        ids: dict[str, object] = {"row_id": self.row_id, "queue": self.queue_key}
        event_id = getattr(self.event, "event_id", None)
        if event_id:
            ids["event_id"] = event_id
        key = getattr(self.event, "idempotency_key", None)  # an outbox entry: a remote event
        if key:
            payload = getattr(self.event, "payload", {})
            ids.update(key=key, remote_id=payload.get("message_id"), chat_id=payload.get("chat_id"),
                       network=payload.get("network"))
        return ids


Handler = Callable[[WorkItem], Awaitable[None]]
DoneCallback = Callable[[WorkItem], None]
FailureCallback = Callable[[WorkItem, BaseException, bool], Awaitable[None]]


_deliveries: contextvars.ContextVar[list[asyncio.Future[Any]] | None] = contextvars.ContextVar(
    "inbox_deliveries", default=None
)
"""The deliveries the event being handled left running (set by the worker for each attempt)."""

_received_at: contextvars.ContextVar[float] = contextvars.ContextVar("inbox_received_at", default=0.0)
"""When the event being handled reached the bridge (its :attr:`WorkItem.received_at`)."""


def received_at() -> float:
    """When the event being handled reached the bridge (``time.monotonic()``); 0.0 outside a
    worker or for a replayed event."""
    return _received_at.get()


def defer_done(delivery: Awaitable[Any]) -> bool:
    """Count the event being handled as handled only once ``delivery`` has finished (it runs on
    from now). False outside a worker (nobody to tell): the caller awaits it itself."""
    deliveries = _deliveries.get()
    if deliveries is None:
        return False
    deliveries.append(asyncio.ensure_future(delivery))
    return True


def _read_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def backoff_seconds(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Wait before retry number ``attempt`` (1-based): 0.5 s, 1 s, 2 s, ... capped."""
    return float(min(cap, base * 2 ** (attempt - 1)))


async def finish_or_cancel(tasks: list[asyncio.Task[None]], grace_seconds: float) -> None:
    """Let ``tasks`` finish for up to ``grace_seconds``, then cancel the rest and wait for them."""
    if not tasks:
        return
    _done, still_running = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in still_running:
        task.cancel()
    await asyncio.gather(*still_running, return_exceptions=True)


class RoomDispatcher:
    """Runs ``handler`` for each item, ordered per ``queue_key``, parallel across keys."""

    def __init__(
        self,
        handler: Handler,
        *,
        on_done: DoneCallback,
        on_failure: FailureCallback,
        max_attempts: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._handler = handler
        self._on_done = on_done
        self._on_failure = on_failure
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._queues: dict[str, deque[WorkItem]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._unsettled: dict[str, deque[tuple[WorkItem, asyncio.Future[Any] | BaseException | None]]] = {}
        """Per queue, handled events not yet done, in order: waiting on their delivery, or on an
        earlier event's."""
        self._settlers: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._count = 0
        self._low_water: int | None = None
        self._below_low_water = asyncio.Event()

    def enqueue(self, items: Iterable[WorkItem]) -> None:
        """Queue items (synchronous: callers rely on no other task running in between)."""
        for item in items:
            queue = self._queues.get(item.queue_key)
            if queue is None:
                queue = self._queues[item.queue_key] = deque()
            queue.append(item)
            self._count += 1
            if item.queue_key not in self._workers and not self._stopping:
                self._idle.clear()
                self._workers[item.queue_key] = asyncio.create_task(
                    self._run(item.queue_key), name=f"inbox-worker:{item.queue_key}"
                )

    def oldest_queued_row_id(self) -> int | None:
        """The smallest row id still queued, being handled or being delivered, if any (O(active
        rooms))."""
        queued = (queue[0].row_id for queue in self._queues.values() if queue)
        delivering = (pending[0][0].row_id for pending in self._unsettled.values() if pending)
        return min((*queued, *delivering), default=None)

    @property
    def queued(self) -> int:
        """Items queued, being handled or being delivered."""
        return self._count

    async def wait_queued_at_most(self, count: int) -> None:
        """Return once no more than ``count`` items are queued."""
        while self._count > count:
            self._low_water = count
            self._below_low_water.clear()
            await self._below_low_water.wait()

    @property
    def active_rooms(self) -> int:
        return len(self._workers)

    async def wait_idle(self, within_seconds: float | None = None) -> bool:
        """Wait until every queue is empty; False when ``within_seconds`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_seconds)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let running handlers and deliveries finish (up to ``grace_seconds``), then cancel.
        Unhandled rows stay pending in the database and are replayed at the next start."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # A worker that finishes its event during the grace starts that event's settler: wait for
        # (or cancel) those too, so none outlives stop() and reports to a stopped store.
        while tasks := [*self._workers.values(), *self._settlers.values()]:
            await finish_or_cancel(tasks, max(0.0, deadline - loop.time()))

    async def _run(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue and not self._stopping:
                item = queue[0]
                outcome = await self._handle_with_retries(item)
                queue.popleft()
                pending = self._unsettled.get(key)
                if not pending and not isinstance(outcome, asyncio.Future):
                    await self._conclude(item, outcome)  # the usual case: nothing left running before it
                    continue
                if pending is None:
                    pending = self._unsettled[key] = deque()
                pending.append((item, outcome))  # concluded in order, once delivered (_settle)
                if key not in self._settlers:
                    self._settlers[key] = asyncio.create_task(self._settle(key), name=f"inbox-settler:{key}")
        finally:
            del self._workers[key]
            if not queue:
                del self._queues[key]
            self._maybe_idle()

    async def _settle(self, key: str) -> None:
        pending = self._unsettled[key]
        try:
            while pending:
                item, outcome = pending[0]
                error: BaseException | None = None
                if isinstance(outcome, asyncio.Future):
                    try:
                        await outcome
                    except asyncio.CancelledError:
                        settler = asyncio.current_task()
                        if self._stopping or (settler is not None and settler.cancelling()):
                            raise  # stopping: the event stays unhandled, replayed at the next start
                        error = RuntimeError("its delivery was cancelled")
                    except Exception as failed:
                        log.warning("delivering inbox row %d (%s in %s) failed: %r", item.row_id, item.kind,
                                    item.queue_key, failed, extra=item.log_ids())
                        error = failed
                else:
                    error = outcome
                await self._conclude(item, error)
                pending.popleft()
        finally:
            del self._settlers[key]
            if not pending:
                del self._unsettled[key]
            self._maybe_idle()

    async def _conclude(self, item: WorkItem, error: BaseException | None) -> None:
        """The item is handled (``error`` None) or given up on; either way its room's progress
        may pass it."""
        if error is None:
            self._on_done(item)
        else:
            await self._on_failure(item, error, True)
        self._count -= 1
        if self._low_water is not None and self._count <= self._low_water:
            self._low_water = None
            self._below_low_water.set()

    def _maybe_idle(self) -> None:
        if not self._workers and not self._settlers:
            self._idle.set()

    async def _handle_with_retries(self, item: WorkItem) -> asyncio.Future[Any] | BaseException | None:
        """Handle ``item``: None when done, the delivery it left running, or the error it was
        given up on after its last attempt (concluded by the caller, in the room's order)."""
        while True:
            deliveries: list[asyncio.Future[Any]] = []
            token = _deliveries.set(deliveries)
            arrival = _received_at.set(item.received_at)
            try:
                await self._handler(item)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                for dropped in deliveries:
                    # Deferred by an attempt that then failed: nobody awaits them; their outcome is
                    # read, so a failure is not reported as "never retrieved".
                    dropped.add_done_callback(_read_outcome)
                item.attempts += 1
                final = item.attempts >= self._max_attempts
                log.warning(
                    "handling inbox row %d (%s in %s) failed, attempt %d/%d: %r",
                    item.row_id, item.kind, item.queue_key, item.attempts, self._max_attempts, error,
                    extra=item.log_ids(),
                )
                if final:
                    return error
                await self._on_failure(item, error, False)
                await self._sleep(backoff_seconds(item.attempts))
            else:
                if not deliveries:
                    return None
                return deliveries[0] if len(deliveries) == 1 else asyncio.gather(*deliveries)
            finally:
                _deliveries.reset(token)
                _received_at.reset(arrival)


__all__ = ["RoomDispatcher", "WorkItem", "backoff_seconds", "defer_done", "finish_or_cancel", "received_at"]
