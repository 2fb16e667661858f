"""Callers of ``ctx.emit(..., wait=True)`` waiting for their remote event to be posted on Matrix.

Waiters are keyed by the event's idempotency key, so the emit that stored an event and a later
emit of the same event (a network that delivers twice, a webhook retried by its sender) wait for
the same send. A waiter is registered *before* the send is stored or looked up: a send that
lands in between resolves it instead of being missed. Nothing is kept for a key nobody waits
for, and a waiter whose caller is cancelled is forgotten at once.
"""

from __future__ import annotations

import asyncio

from bridgekit.errors import DeliveryInterrupted
from bridgekit.ids import EventID

Outcome = asyncio.Future[EventID | None]


class DeliveryWaiters:
    def __init__(self) -> None:
        self._waiting: dict[str, list[Outcome]] = {}
        self._closed = False

    def register(self, key: str) -> Outcome:
        """A future for the send stored under ``key``; await it with :meth:`wait`."""
        future: Outcome = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(_interrupted())
        else:
            self._waiting.setdefault(key, []).append(future)
        return future

    async def wait(self, key: str, future: Outcome) -> EventID | None:
        """The posted event's ID; raises what :meth:`fail` or :meth:`close` set."""
        try:
            return await future
        finally:
            self._forget(key, future)

    def resolve(self, key: str, event_id: EventID | None) -> None:
        for future in self._waiting.pop(key, ()):
            if not future.done():
                future.set_result(event_id)

    def fail(self, key: str, error: BaseException) -> None:
        for future in self._waiting.pop(key, ()):
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        """The bridge is stopping: every waiter gets :class:`DeliveryInterrupted`, later ones too."""
        self._closed = True
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(_interrupted())

    @property
    def count(self) -> int:
        """Callers waiting now (a leak shows here)."""
        return sum(len(futures) for futures in self._waiting.values())

    def discard(self, key: str, future: Outcome) -> None:
        """Stop waiting (the caller failed before the send was stored)."""
        future.cancel()
        self._forget(key, future)

    def _forget(self, key: str, future: Outcome) -> None:
        futures = self._waiting.get(key)
        if futures is None:
            return
        if future in futures:
            futures.remove(future)
        if not futures:
            del self._waiting[key]


def _interrupted() -> DeliveryInterrupted:
    return DeliveryInterrupted(
        "the bridge stopped before the event was posted; it is stored and will be posted at the next start"
    )


__all__ = ["DeliveryWaiters"]
