"""Netsplits: when two IRC servers lose their link, every user on the far side QUITs at once, with
the two servers' names as the reason (``irc.east.net irc.west.net``; networks that hide their
servers say ``*.net *.split``). Minutes later the link is back and they all JOIN again. Shown as
it happens, a split of a big channel fills the Matrix room with hundreds of leaves and joins.

So a quit with a split-style reason does not make the ghost leave: the leave is *withheld* and
the ghost is shown away (presence offline). A join of that nick in that channel within the window
(``netsplit_minutes``) restores it silently (presence online; no join, it never left). When the
window passes, the withheld leaves are let go: the user really left.

Servers that speak IRCv3 batches (the bot asks for ``batch``) put the QUITs of a split in a
``netsplit`` batch (``BATCH +ref netsplit irc.east.net irc.west.net`` ... ``BATCH -ref``, each QUIT
tagged ``batch=ref``), whatever their reasons say: a QUIT in one is a split's too
(:class:`SplitBatches`). The return comes as a ``netjoin`` batch of JOINs, which needs nothing of
its own: a JOIN of a withheld user restores it, in a batch or not. A batch only decides whether a
QUIT is a split's; the window still bounds how long its leave is withheld, so a batch, even one
never closed or opened twice, hides no leave for longer than ``netsplit_minutes``.

:class:`Netsplits` and :class:`SplitBatches` are pure (events in, events out, the clock a
number); :class:`SplitWatch` sets the presence and emits for the connector.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import irc.client

from bridgekit import BridgeContext, RemoteEvent, RemoteMember, RemoteUserID
from bridges.irc.inbound import batch_of, quit_reason

log = logging.getLogger(__name__)

CHECK_S = 30.0
"""How often withheld leaves are checked for a window that has passed."""

BATCH_CAP = "batch"
"""IRCv3 batches: what tells a netsplit where the QUITs' reasons do not."""

BATCH_OPEN_S = 60.0
"""A netsplit batch comes whole in a burst: one never closed counts as open this long, no longer."""

MAX_OPEN_BATCHES = 16
"""Netsplit batches open at once (more: the oldest is forgotten); each costs a few bytes."""

_REF = re.compile(r"[!-~]{1,64}")
"""A batch reference: printable ASCII, no space, bounded."""

_SERVER = r"[A-Za-z0-9*][A-Za-z0-9*.-]*\.[A-Za-z0-9*.-]*[A-Za-z0-9*]"
_SPLIT_REASON = re.compile(rf"{_SERVER} {_SERVER}")


def is_split_reason(reason: str | None) -> bool:
    """Two server names (each with a dot) and nothing else: what servers give as the QUIT reason
    of users lost in a netsplit. A user's own quit message is prefixed by most servers ("Quit:"),
    so it does not look like one; one that does (a server without the prefix) is at worst shown
    away for the window before it leaves."""
    return bool(reason) and _SPLIT_REASON.fullmatch(reason or "") is not None


@dataclass(slots=True)
class Sifted:
    pass_on: list[RemoteEvent] = field(default_factory=list)
    """Events to emit as they are."""
    away: list[RemoteUserID] = field(default_factory=list)
    """Users lost in a split now: show them offline."""
    back: list[RemoteUserID] = field(default_factory=list)
    """Users back from a split: show them online (their join was dropped: they never left)."""


class Netsplits:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._withheld: dict[tuple[str, str], tuple[float, RemoteMember]] = {}
        """(chat, user) -> (when, the leave not emitted)."""

    def __len__(self) -> int:
        return len(self._withheld)

    def sift(self, kind: str, reason: str | None, events: Sequence[RemoteEvent], now: float, *,
             in_split_batch: bool = False) -> Sifted:
        """The events one IRC line (``kind``: quit, join, ...) became; ``reason``: a QUIT's;
        ``in_split_batch``: the line came in a netsplit batch (:class:`SplitBatches`)."""
        sifted = Sifted()
        splitting = kind == "quit" and self.window_s > 0 and (in_split_batch or is_split_reason(reason))
        for event in events:
            if not isinstance(event, RemoteMember):
                sifted.pass_on.append(event)
                continue
            key = (str(event.chat_id), str(event.sender_id))
            if splitting and event.membership == "leave":
                if not any(user == key[1] for _chat, user in self._withheld):
                    sifted.away.append(event.sender_id)
                self._withheld[key] = (now, event)
            elif event.membership == "join" and key in self._withheld:
                del self._withheld[key]
                if not any(user == key[1] for _chat, user in self._withheld):
                    sifted.back.append(event.sender_id)
            else:
                sifted.pass_on.append(event)
        return sifted

    def expired(self, now: float) -> list[RemoteMember]:
        """The withheld leaves whose window has passed, oldest first: emit them now."""
        gone = [key for key, (when, _event) in self._withheld.items() if now - when >= self.window_s]
        return [self._withheld.pop(key)[1] for key in gone]


class SplitBatches:
    """The IRCv3 ``netsplit`` batches open on the bot's connection, by reference.

    Only a server opens one (a source without ``nick!user@host``), with a well-formed reference
    and both servers named; a reference opened again while open keeps its first opening time; one
    never closed is forgotten :data:`BATCH_OPEN_S` after it opened, and at most
    :data:`MAX_OPEN_BATCHES` are kept. Other batch types (``netjoin`` included) are not kept."""

    def __init__(self) -> None:
        self._open: dict[str, float] = {}
        """reference -> when it opened."""

    def __len__(self) -> int:
        return len(self._open)

    def heard(self, source: str | None, marker: str | None, arguments: Sequence[str], now: float) -> None:
        """A BATCH line: ``marker`` ``+ref`` opens (``arguments``: its type and parameters),
        ``-ref`` closes."""
        marker = marker or ""
        ref = marker[1:]
        if marker.startswith("-"):
            self._open.pop(ref, None)
            return
        if (not marker.startswith("+") or not _REF.fullmatch(ref) or not _from_server(source)
                or len(arguments) < 3 or arguments[0].lower() != "netsplit"):
            return
        self._forget_stale(now)
        if ref in self._open:
            return  # opened twice: the first opening time stands (it still expires)
        if len(self._open) >= MAX_OPEN_BATCHES:
            del self._open[min(self._open, key=self._open.__getitem__)]
        self._open[ref] = now

    def is_netsplit(self, ref: str | None, now: float) -> bool:
        """The line tagged ``batch=ref`` is part of an open netsplit batch."""
        self._forget_stale(now)
        return ref is not None and ref in self._open

    def _forget_stale(self, now: float) -> None:
        for ref in [ref for ref, opened in self._open.items() if now - opened >= BATCH_OPEN_S]:
            del self._open[ref]


def _from_server(source: str | None) -> bool:
    """Servers send lines as their name; users' lines come as ``nick!user@host``."""
    return bool(source) and "!" not in (source or "") and "@" not in (source or "")


class SplitWatch:
    """:class:`Netsplits` at work for one network: sifts what the bot hears, shows the ghosts of
    users lost in a split offline (and online again when they come back), and lets the withheld
    leaves go once the window has passed (checked every :data:`CHECK_S` seconds)."""

    def __init__(self, ctx: BridgeContext, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ctx = ctx
        self._splits = Netsplits(window_s)
        self._batches = SplitBatches()
        self._clock = clock
        self._checking: asyncio.Task[None] | None = None

    async def sift(self, event: irc.client.Event, remote: list[RemoteEvent]) -> list[RemoteEvent]:
        """The events to emit of those the IRC line ``event`` became (see :meth:`Netsplits.sift`)."""
        kind, now = event.type, self._clock()
        if kind == "batch":
            source = None if event.source is None else str(event.source)
            self._batches.heard(source, event.target, [str(a) for a in event.arguments], now)
        if kind not in ("quit", "join") or not remote:
            return remote
        in_split_batch = kind == "quit" and self._batches.is_netsplit(batch_of(event), now)
        sifted = self._splits.sift(kind, quit_reason(event), remote, now, in_split_batch=in_split_batch)
        for user in sifted.away:
            await self._presence(user, "offline")
        for user in sifted.back:
            await self._presence(user, "online")
        if self._splits and self._checking is None:
            self._checking = asyncio.create_task(self._let_go_when_due())
        return sifted.pass_on

    def stop(self) -> None:
        if self._checking is not None:
            self._checking.cancel()

    async def _let_go_when_due(self) -> None:
        try:
            while self._splits:
                await asyncio.sleep(min(CHECK_S, self._splits.window_s))
                for leave in self._splits.expired(self._clock()):
                    await self._ctx.emit(leave)
        finally:
            self._checking = None

    async def _presence(self, user: RemoteUserID, presence: str) -> None:
        try:
            await self._ctx.matrix.intent(self._ctx.ghost_for(user)).set_presence(presence)
        except Exception as error:  # presence is a nicety: never stop the bridging for it
            log.info("%s: could not set the presence of %s to %s: %s", self._ctx.name, user, presence, error)


__all__ = [
    "BATCH_CAP", "BATCH_OPEN_S", "CHECK_S", "MAX_OPEN_BATCHES", "Netsplits", "Sifted", "SplitBatches", "SplitWatch",
    "is_split_reason",
]
