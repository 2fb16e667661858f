"""Honesty about downtime, without a connection keeper.

Without a keeper the IRC connections live in the bridge process: while it is down nobody listens,
and what is said on IRC meanwhile is never seen (IRC keeps no history). The bridge cannot bring
those lines back, but it can say so. While it runs, each network records a heartbeat (the time,
every :data:`HEARTBEAT_S` seconds, and once more at a clean stop); at start, when the last one is
at least :data:`MIN_OUTAGE_S` old, every portal of the network gets one notice naming the gap.

This module decides (pure: times are numbers, seconds since the epoch); the connector records the
heartbeat and posts the notices (``DowntimeWatch``, below, does both for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bridgekit import BridgeContext, ChatID, MessageID, RemoteMessage, RemoteUserID

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
"""How often the bridge records that it is alive: the error of the reported start of a gap."""
MIN_OUTAGE_S = 30.0
"""A shorter gap is a restart, not an outage worth a notice in every portal."""
HEARTBEAT_KEY = "alive_at"


@dataclass(frozen=True, slots=True)
class Outage:
    began: float
    ended: float
    subject: str = "The bridge"
    """What was offline: the bridge, or (:mod:`bridges.irc.keeper`) the IRC connection keeper."""

    @property
    def key(self) -> str:
        """Names this outage: a notice emitted twice for it (a crash at start) is posted once."""
        return f"offline:{int(self.began)}-{int(self.ended)}"

    def notice(self) -> str:
        began, ended = _utc(self.began), _utc(self.ended)
        clock = "%H:%M:%S" if began.strftime("%H:%M") == ended.strftime("%H:%M") else "%H:%M"  # not "16:10 to 16:10"
        until = ended.strftime(clock) if ended.date() == began.date() else ended.strftime(f"%Y-%m-%d {clock}")
        return (
            f"{self.subject} was offline from {began:%Y-%m-%d} {began.strftime(clock)} to {until} UTC; "
            "messages from IRC in that time were not seen."
        )


def outage(last_alive: object, now: float, *, at_least: float = MIN_OUTAGE_S) -> Outage | None:
    """The gap since ``last_alive`` (the stored heartbeat; None or junk: the first start), if it
    is long enough to tell."""
    if not isinstance(last_alive, int | float) or isinstance(last_alive, bool):
        return None
    if now - float(last_alive) < at_least:
        return None
    return Outage(float(last_alive), now)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def tell_portals(ctx: BridgeContext, gap: Outage, sender: str, *, key: str) -> None:
    """One notice about ``gap`` in every portal of a channel of the network, from the bridge bot
    (``sender``: the name it speaks under). ``key``: its message ID, the same each time this gap
    is told, so that telling it again (a crash meanwhile) posts nothing twice."""
    log.warning("%s: %s", ctx.name, gap.notice())
    for chat in await ctx.portal_chats():
        if chat.startswith("pm:"):
            continue  # private chats: only portals of channels
        await ctx.emit(RemoteMessage(
            chat_id=ChatID(chat), message_id=MessageID(key), sender_id=RemoteUserID(sender),
            text=gap.notice(), msgtype="m.notice", by_bot=True, timestamp_ms=int(gap.ended * 1000),
        ))


class DowntimeWatch:
    """The heartbeat of one network and the notices at start. ``get``/``set``: the network's
    records (its key-value store)."""

    def __init__(
        self, ctx: BridgeContext, records: _Records, *, clock: Callable[[], float] = time.time,
        interval: float = HEARTBEAT_S,
    ) -> None:
        self._ctx = ctx
        self._records = records
        self._clock = clock
        self._interval = interval
        self._beating: asyncio.Task[None] | None = None

    async def start(self, sender: str) -> Outage | None:
        """Tell every portal about the gap since the last heartbeat (if long enough), as notices
        from the bridge bot (``sender``: the name it speaks under), then start beating."""
        now = self._clock()
        gap = outage(await self._records.get(HEARTBEAT_KEY, None), now)
        await self._beat()
        self._beating = asyncio.create_task(self._keep_beating())
        if gap is None:
            return None
        await tell_portals(self._ctx, gap, sender, key=gap.key)
        return gap

    async def stop(self) -> None:
        """A clean stop: the last heartbeat is now."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        await self._beat()

    async def _beat(self) -> None:
        try:
            await self._records.set(HEARTBEAT_KEY, self._clock())
        except Exception:
            log.exception("%s: could not record the heartbeat", self._ctx.name)

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._beat()


class _Records(Protocol):
    """What :class:`DowntimeWatch` needs of ``IrcRecords``."""

    async def get(self, key: str, default: object) -> object: ...
    async def set(self, key: str, value: object, *, ttl_seconds: float | None = None) -> None: ...


__all__ = ["HEARTBEAT_S", "MIN_OUTAGE_S", "DowntimeWatch", "Outage", "outage", "tell_portals"]
