"""Telling the network's echo of our own send from a new message, without a race.

A session's ``send`` returns the remote message ID, and the core maps it to the Matrix event.
But the network may announce the message (its echo) before ``send`` has returned, and the
connector may emit it before the map is written: checked then, the echo looks new and would be
posted to Matrix a second time. So the router marks a send to a chat as in flight until its ID
is mapped, and the Matrix-bound worker of that chat waits for the chat's sends to settle before
it decides whether a remote message is an echo. The worker waits, never the connector (whose
``send`` may itself be waiting on the task that emitted the echo).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


class SendsInFlight:
    def __init__(self, *, max_wait_seconds: float = 30.0) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._changed = asyncio.Condition()
        self._max_wait = max_wait_seconds

    @contextlib.asynccontextmanager
    async def sending(self, network: str, chat_id: str) -> AsyncIterator[None]:
        """Hold while sending to ``chat_id`` and mapping the ID the network gave."""
        key = (network, chat_id)
        self._counts[key] += 1
        try:
            yield
        finally:
            self._counts[key] -= 1
            if self._counts[key] <= 0:
                del self._counts[key]
            async with self._changed:
                self._changed.notify_all()

    async def settled(self, network: str, chat_id: str) -> None:
        """Return once no send to ``chat_id`` is in flight (or after the cap: a send stuck that
        long has not produced the message being checked)."""
        key = (network, chat_id)
        if key not in self._counts:
            return
        try:
            async with asyncio.timeout(self._max_wait), self._changed:
                await self._changed.wait_for(lambda: key not in self._counts)
        except TimeoutError:
            log.warning("a send to %s on %s is still in flight after %.0f s", chat_id, network, self._max_wait)


__all__ = ["SendsInFlight"]
