"""The outgoing policy of one IRC connection, as plain classes that take the clock as a number:

- :class:`TokenBucket`: a burst, then ``rate`` lines a second, so a Matrix user pasting twenty
  lines does not get the connection flood-killed;
- :class:`EchoLedger`: under IRCv3 echo-message, the lines written but not yet echoed (or
  refused) are the ones a dropped connection may have lost; it says which lines an event settles,
  and when a PING barrier is due behind lines that never come back;
- :class:`Keepalive`: when silence means the server is gone.

``link.py`` asks them and does the writing and the waiting.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import irc.client

from bridges.irc.casemapping import casefold_irc
from bridges.irc.lines import Line, ping

ECHOED = frozenset({"pubmsg", "privmsg", "pubnotice", "privnotice", "ctcp", "ctcpreply", "action"})
"""The events one of our own lines comes back as under echo-message (a CTCP ACTION as two)."""
REFUSED_TARGET = frozenset({"cannotsendtochan", "nosuchnick", "nosuchchannel"})
"""Numerics after which no echo will come for a line to that target."""
TRACKED = frozenset({"PRIVMSG", "NOTICE"})
"""The commands echo-message sends back."""
MAX_UNECHOED = 1000
ECHO_PATIENCE_S = 3.0
"""A line still unechoed this long sends a PING behind it: the server answers in order, so once
the PONG is back every line before it was taken (and echoed) or dropped without a word (some
servers' spam filters do): either way no echo will come, and its sender stops waiting."""
BARRIER = "bk-echo-"


@dataclass(eq=False, slots=True)
class OutLine:
    """A line on its way to the server. ``settled`` (only for lines someone waits on) is done
    once the line is settled, or fails when it can no longer be (the connection was closed)."""

    line: Line
    settled: asyncio.Future[None] | None = None
    seq: int = 0
    """Its place among the lines written into the echo ledger (for the PING barrier)."""
    written_at: float = 0.0

    @property
    def text(self) -> str:
        return self.line.text

    def settle(self) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_exception(error)
            # Read at once: its sender may have stopped at an earlier line's failure, and an
            # exception nobody reads is reported as "never retrieved". Awaiting it still raises.
            self.settled.exception()


class TokenBucket:
    """``burst`` lines at once, then ``rate`` a second; a ``rate`` of 0 or less does not pace."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = now

    @property
    def paces(self) -> bool:
        return self.rate > 0

    def take(self, now: float) -> bool:
        """Take a token if there is one (then a line may be written now)."""
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next token, after a :meth:`take` that found none."""
        return (1 - self._tokens) / self.rate


class Heard(NamedTuple):
    settled: list[OutLine]
    """Lines the event settles (echoed, refused, or behind an answered barrier)."""
    swallowed: bool
    """The event is only the answer to our own line (an echo, a barrier's PONG): no news."""
    given_up: int = 0
    """Of ``settled``, the lines a barrier's PONG showed the server took without echoing."""


NOTHING = Heard([], False)


class EchoLedger:
    """Lines written under echo-message and not settled yet, oldest first."""

    def __init__(self, *, patience: float = ECHO_PATIENCE_S, limit: int = MAX_UNECHOED) -> None:
        self.patience = patience
        self._limit = limit
        self._unechoed: list[OutLine] = []
        """(a list: a deque costs 760 bytes even empty, and a connection keeps its ledger for life)"""
        self._written = 0
        """Lines written into the ledger so far (numbers them for the PING barrier)."""
        self._barrier: int | None = None
        """The ledger number a PING barrier was sent behind and is not answered yet."""

    def __bool__(self) -> bool:
        return bool(self._unechoed)

    def __iter__(self) -> Iterator[OutLine]:
        return iter(self._unechoed)

    @staticmethod
    def tracks(line: Line) -> bool:
        return line.command in TRACKED

    def written(self, line: OutLine, now: float) -> list[OutLine]:
        """Record a line just written; returns the oldest if the ledger overflows (a server that
        ACKed echo-message but does not echo): it is settled, as nothing will come for it."""
        self._written += 1
        line.seq, line.written_at = self._written, now
        self._unechoed.append(line)
        return [self._unechoed.pop(0)] if len(self._unechoed) > self._limit else []

    def hear(self, event: irc.client.Event, *, own: bool) -> Heard:
        """``own``: the event's source is our own nick."""
        kind, arguments = event.type, event.arguments
        if kind in ECHOED and own:
            # A CTCP ACTION arrives as "ctcp" and again as "action": one line.
            return Heard(self._acknowledge(str(event.target), echoed=True) if kind != "action" else [], True)
        if kind in REFUSED_TARGET and arguments:
            return Heard(self._acknowledge(str(arguments[0]), echoed=False), False)
        if kind == "pong" and arguments and str(arguments[-1]).startswith(BARRIER):
            given_up = self._barrier_answered(str(arguments[-1]).removeprefix(BARRIER))
            return Heard(given_up, True, len(given_up))
        if kind == "disconnect":
            self._barrier = None
        return NOTHING

    def barrier_due(self, now: float) -> Line | None:
        """A PING to send behind the lines written so far, when the oldest has waited too long
        (see :data:`ECHO_PATIENCE_S`); call :meth:`barrier_sent` once it is written."""
        if self._barrier is None and self._unechoed and now - self._unechoed[0].written_at >= self.patience:
            return ping(f"{BARRIER}{self._written}")
        return None

    def barrier_sent(self) -> None:
        self._barrier = self._written

    def take_all(self) -> list[OutLine]:
        """Every unsettled line, in order; the ledger is left empty."""
        lines = list(self._unechoed)
        self._unechoed.clear()
        self._barrier = None
        return lines

    def _barrier_answered(self, number: str) -> list[OutLine]:
        if self._barrier is None or number != str(self._barrier):
            return []  # a barrier of an earlier connection, or not ours
        self._barrier = None
        given_up = []
        while self._unechoed and self._unechoed[0].seq <= int(number):
            given_up.append(self._unechoed.pop(0))
        return given_up

    def _acknowledge(self, target: str, *, echoed: bool) -> list[OutLine]:
        """The server took (``echoed``) or refused our oldest line to ``target``: it is no longer
        at risk. Echoes come in the order the lines went, so an echo whose target we cannot
        match (a server that spells it differently) takes the oldest line."""
        folded = _fold(target)
        for index, line in enumerate(self._unechoed):
            if _fold(line.line.target or "") == folded:
                del self._unechoed[index]
                return [line]
        if echoed and self._unechoed:
            return [self._unechoed.pop(0)]
        return []


def _fold(name: str) -> str:
    # rfc1459, the widest of the usual case mappings: it only decides which of our own unechoed
    # lines an echo or a refusal stands for.
    return casefold_irc(name, "rfc1459")


class Silence(enum.Enum):
    PING = "ping"
    GIVE_UP = "give up"


class Keepalive:
    """A server that vanished without closing the connection (a crash, a dropped route) shows only
    as silence, and lines written meanwhile go nowhere. After ``interval`` seconds of it we PING;
    when as long again passes without a word, the connection is given up, so it is made again
    and the lines the server never echoed are sent again."""

    def __init__(self, interval: float, now: float) -> None:
        self.interval = interval
        self._last_heard = now
        self._pinged = False

    @property
    def poll_interval(self) -> float:
        return self.interval / 4

    def heard(self, now: float) -> None:
        self._last_heard = now

    def silent_for(self, now: float) -> float:
        return now - self._last_heard

    def check(self, now: float) -> Silence | None:
        silent = self.silent_for(now)
        if silent >= 2 * self.interval:
            return Silence.GIVE_UP
        if silent >= self.interval and not self._pinged:
            self._pinged = True
            return Silence.PING
        if silent < self.interval:
            self._pinged = False
        return None


__all__ = ["EchoLedger", "Heard", "Keepalive", "OutLine", "Silence", "TokenBucket"]
