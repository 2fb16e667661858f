"""One connection to an IRC server, on the ``irc`` package's asyncio client.

It registers (trying the next nick the caller offers while the server says a nick is taken),
records what the server supports (ISUPPORT: CASEMAPPING, NICKLEN...), hands every event to one
callback, and writes lines through a token bucket (a burst, then ``lines_per_second``), so a
Matrix user pasting twenty lines does not get the connection flood-killed. Lines reach ``send``
already made safe by the output gate (``output_gate.py``); this module only refuses CR, LF and
NUL as a last line of defence.

A line sent with :meth:`IrcLink.send_tracked` comes with a future that is done once the line is
*settled*: echoed by the server (IRCv3 echo-message) or refused by it, or, without echo-message,
written to the socket. The future travels with the line when a dropped connection hands it to the
next one (:meth:`IrcLink.take_unsent`), so whoever waits on it learns when the line really went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import irc.client
import irc.client_aio
import irc.connection
from jaraco.stream.buffer import LenientDecodingLineBuffer

log = logging.getLogger(__name__)

ECHO_CAP = "echo-message"
ECHOED = frozenset({"pubmsg", "privmsg", "pubnotice", "privnotice", "ctcp", "ctcpreply", "action"})
"""The events one of our own lines comes back as under echo-message (a CTCP ACTION as two)."""
REFUSED_TARGET = frozenset({"cannotsendtochan", "nosuchnick", "nosuchchannel"})
"""Numerics after which no echo will come for a line to that target."""
MAX_UNECHOED = 1000
ECHO_PATIENCE_S = 3.0
"""A line still unechoed this long sends a PING behind it: the server answers in order, so once
the PONG is back every line before it was taken (and echoed) or dropped without a word (some
servers' spam filters do): either way no echo will come, and its sender stops waiting."""
BARRIER = "bk-echo-"
CLOSE_GRACE_S = 5.0
"""How long closing a connection waits for its queued lines to be written and echoed."""

EventHandler = Callable[["IrcLink", irc.client.Event], None]
NickChooser = Callable[[int], str]
"""attempt (1, 2, ...) -> the next nick to try after the server refused the previous one."""


class RegistrationFailed(ConnectionError):
    pass


@dataclass(eq=False, slots=True)
class OutLine:
    """A line on its way to the server. ``settled`` (only for lines someone waits on) is done
    once the line is settled, or fails when it can no longer be (the connection was closed)."""

    text: str
    settled: asyncio.Future[None] | None = None
    seq: int = 0
    """Its place among the lines written into the echo ledger (for the PING barrier)."""
    written_at: float = 0.0

    def settle(self) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.settled is not None and not self.settled.done():
            self.settled.set_exception(error)
            # Read at once: its sender may have stopped at an earlier line's failure, and an
            # exception nobody reads is reported as "never retrieved". Awaiting it still raises.
            self.settled.exception()


class _LenientConnection(irc.client_aio.AioConnection):  # type: ignore[misc]
    # The default strict decoder drops the whole connection on one line that is not UTF-8.
    buffer_class = LenientDecodingLineBuffer


class _Reactor(irc.client_aio.AioReactor):  # type: ignore[misc]
    connection_class = _LenientConnection


class IrcLink:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: bool,
        nick: str,
        ident: str,
        realname: str,
        on_event: EventHandler,
        password: str | None = None,
        lines_per_second: float = 2.0,
        burst: int = 5,
        next_nick: NickChooser | None = None,
        caps: tuple[str, ...] = (),
        keepalive: float = 60.0,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.wanted_nick = nick
        self.ident = ident
        self.realname = realname
        self.password = password
        self._on_event = on_event
        self._next_nick = next_nick
        self._caps = (*caps, ECHO_CAP)
        """IRCv3 capabilities asked for once registered (the server ignores the unknown ones).
        With echo-message the server sends each of our lines back once it has taken it: lines
        written but not yet echoed are the ones a dropped connection may have lost."""
        self._echo = False
        self._unechoed: deque[OutLine] = deque()
        self._written = 0
        """Lines written into the echo ledger so far (numbers them for the PING barrier)."""
        self._barrier: int | None = None
        """The ledger number a PING barrier was sent behind and is not answered yet."""
        self._echo_check: asyncio.TimerHandle | None = None
        self._keepalive_s = keepalive
        self._keepalive: asyncio.Task[None] | None = None
        self._last_heard = time.monotonic()
        self._nick_attempts = 0
        self._rate = lines_per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._queue: deque[OutLine] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._welcome = asyncio.Event()
        self._closed = asyncio.Event()
        self._registration_error: str | None = None
        self.isupport: dict[str, str] = {}
        self._connection: _LenientConnection | None = None
        self.lines_sent = 0

    # ---- state -------------------------------------------------------------------------------

    @property
    def nick(self) -> str:
        connection = self._connection
        return connection.real_nickname if connection is not None and connection.real_nickname else self.wanted_nick

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.is_connected() and self._welcome.is_set()

    @property
    def host_allowance(self) -> str:
        """Our host as others see it is unknown until the server says: assume the longest."""
        return "h" * 63

    # ---- connecting --------------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (two waits share it)
        """Connect and register; raises RegistrationFailed or OSError."""
        reactor = _Reactor(loop=asyncio.get_running_loop())
        reactor.add_global_handler("all_events", self._dispatch, -10)
        connection: _LenientConnection = reactor.server()
        self._connection = connection
        factory = (
            irc.connection.AioFactory(ssl=ssl.create_default_context()) if self.tls else irc.connection.AioFactory()
        )
        self._welcome.clear()
        self._closed.clear()
        await connection.connect(
            self.host, self.port, self.wanted_nick, password=self.password, username=self.ident,
            ircname=self.realname, connect_factory=factory,
        )
        done = asyncio.ensure_future(self._welcome.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            finished, _pending = await asyncio.wait(
                {done, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            done.cancel()
            closed.cancel()
        if not self._welcome.is_set():
            reason = self._registration_error or ("timed out" if not finished else "the server closed the connection")
            self._hang_up()
            raise RegistrationFailed(f"{self.host}:{self.port}: registration failed: {reason}")
        if self._keepalive_s > 0:
            self._keepalive = asyncio.create_task(self._watch_silence(connection))

    async def _watch_silence(self, connection: _LenientConnection) -> None:
        """A server that vanished without closing the connection (a crash, a dropped route) shows
        only as silence, and lines written meanwhile go nowhere. After ``keepalive`` seconds of it
        we PING; when as long again passes without a word, the connection is given up, so it is
        made again and the lines the server never echoed are sent again."""
        pinged = False
        while self._connection is connection and connection.is_connected():
            await asyncio.sleep(self._keepalive_s / 4)
            silent = time.monotonic() - self._last_heard
            if silent >= 2 * self._keepalive_s:
                log.warning("%s: no word from the server in %.0f s; reconnecting", self.host, silent)
                self._hang_up()
                return
            if silent >= self._keepalive_s and not pinged:
                with contextlib.suppress(Exception):
                    self.send_now(f"PING :keepalive-{int(time.time())}")
                pinged = True
            elif silent < self._keepalive_s:
                pinged = False

    def _dispatch(self, _connection: Any, event: irc.client.Event) -> None:
        kind = event.type
        self._last_heard = time.monotonic()
        if kind in ECHOED and self._is_own(event.source):
            if kind != "action":  # a CTCP ACTION arrives as "ctcp" and again as "action"
                self._acknowledge(str(event.target), echoed=True)
            return  # our own line, back from the server (echo-message): no news to the bridge
        if kind in REFUSED_TARGET and event.arguments:
            self._acknowledge(str(event.arguments[0]), echoed=False)
        if kind == "pong" and event.arguments and str(event.arguments[-1]).startswith(BARRIER):
            self._barrier_answered(str(event.arguments[-1]))
            return
        if kind == "cap":
            words = [str(a) for a in event.arguments]
            if words and words[0] == "ACK" and ECHO_CAP in words[-1].split():
                self._echo = True
        elif kind == "welcome":
            self._welcome.set()
            if self._caps:
                self.send_now(f"CAP REQ :{' '.join(self._caps)}")
        elif kind == "featurelist":
            for token in event.arguments[:-1]:
                key, _, value = str(token).partition("=")
                self.isupport[key.upper()] = value
        elif kind in ("nicknameinuse", "erroneusnickname", "unavailresource") and not self._welcome.is_set():
            self._nick_attempts += 1
            if self._next_nick is None or self._nick_attempts > 20:
                self._registration_error = f"nick {self.wanted_nick} is taken"
                self._hang_up()
                return
            self.wanted_nick = self._next_nick(self._nick_attempts)
            self.send_now(f"NICK {self.wanted_nick}")
            return
        elif kind == "error":
            self._registration_error = " ".join(str(a) for a in event.arguments) or "ERROR from the server"
        elif kind == "disconnect":
            self._closed.set()
            self._welcome.clear()
            self._echo = False
            self._barrier = None
        try:
            self._on_event(self, event)
        except Exception:
            log.exception("handling IRC %s from %s failed", kind, self.host)

    # ---- writing -----------------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Queue one raw line (no CR LF); paced. Lines keep their order.

        Raises ConnectionError when the connection is down: the caller's message is retried later
        rather than queued for a connection that may never come back. Lines already queued when
        it drops stay queued (see :meth:`take_unsent`).
        """
        self.pass_on(OutLine(line))

    def send_tracked(self, line: str) -> asyncio.Future[None]:
        """:meth:`send`, and a future done once the line is settled (see the module docstring)."""
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pass_on(OutLine(line, settled))
        return settled

    def pass_on(self, line: OutLine) -> None:
        """Queue a line, with its future if it has one (lines another connection handed over)."""
        if any(char in line.text for char in "\r\n\0"):
            raise ValueError("an IRC line must not contain CR, LF or NUL (the output gate removes them)")
        if not self.connected:
            raise ConnectionError(f"not connected to {self.host}")
        if self._rate <= 0 or (not self._queue and self._take_token()):
            self._write(line)
            return
        self._queue.append(line)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    def send_now(self, line: str) -> None:
        """Write a protocol line at once (PONG, NICK during registration, QUIT): not paced."""
        if any(char in line for char in "\r\n\0"):
            raise ValueError("an IRC line must not contain CR, LF or NUL")
        self._write(OutLine(line))

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def _drain(self) -> None:
        while self._queue:
            if not self._take_token():
                await asyncio.sleep((1 - self._tokens) / self._rate)
                continue
            try:
                self._write(self._queue[0])
            except ConnectionError:
                return  # the connection dropped: the line stays first in the queue (take_unsent)
            self._queue.popleft()

    @property
    def has_unsent(self) -> bool:
        return bool(self._queue or self._unechoed)

    def requeue(self, lines: list[OutLine]) -> None:
        """Put lines taken with :meth:`take_unsent` back in front (a reconnect failed)."""
        self._queue.extendleft(reversed(lines))

    def take_unsent(self) -> list[OutLine]:
        """The lines a dropped connection may have lost, in order: those written but never echoed
        (when the server offers echo-message), then those still queued behind the pacing. Both
        are left empty. Whoever replaces the connection sends them (:meth:`pass_on`), so a Matrix
        message that was accepted is not lost with the connection (at worst a line the server
        took just before the drop comes twice); their futures go with them."""
        if self._writer is not None:
            self._writer.cancel()
        lines = [*self._unechoed, *self._queue]
        self._unechoed.clear()
        self._queue.clear()
        self._barrier = None
        return lines

    def _write(self, line: OutLine) -> None:
        connection = self._connection
        if connection is None or not connection.is_connected():
            raise ConnectionError(f"not connected to {self.host}")
        connection.send_raw(line.text)
        self.lines_sent += 1
        if not (self._echo and line.text.startswith(("PRIVMSG ", "NOTICE "))):
            line.settle()  # no echo will come: written is as far as we can tell
            return
        self._written += 1
        line.seq, line.written_at = self._written, time.monotonic()
        self._unechoed.append(line)
        if len(self._unechoed) > MAX_UNECHOED:  # a server that ACKed echo-message but does not echo
            self._unechoed.popleft().settle()
        if self._echo_check is None:
            self._echo_check = asyncio.get_running_loop().call_later(ECHO_PATIENCE_S, self._check_echoes)

    def _check_echoes(self) -> None:
        """Runs while lines wait for their echo: when the oldest has waited too long, a PING
        goes behind the lines written so far (see :data:`ECHO_PATIENCE_S`)."""
        self._echo_check = None
        if not self._unechoed:
            return
        if self._barrier is None and time.monotonic() - self._unechoed[0].written_at >= ECHO_PATIENCE_S:
            with contextlib.suppress(ConnectionError):
                self.send_now(f"PING :{BARRIER}{self._written}")
                self._barrier = self._written
        self._echo_check = asyncio.get_running_loop().call_later(ECHO_PATIENCE_S, self._check_echoes)

    def _barrier_answered(self, token: str) -> None:
        number = token.removeprefix(BARRIER)
        if self._barrier is None or number != str(self._barrier):
            return  # a barrier of an earlier connection, or not ours
        self._barrier = None
        given_up = 0
        while self._unechoed and self._unechoed[0].seq <= int(number):
            self._unechoed.popleft().settle()
            given_up += 1
        if given_up:
            log.warning("%s: the server took %d line(s) without echoing them; not waiting for them", self.host,
                        given_up)

    def _is_own(self, source: Any) -> bool:
        nick = getattr(source, "nick", None)
        return bool(nick) and _fold(str(nick)) == _fold(self.nick)

    def _acknowledge(self, target: str, *, echoed: bool) -> None:
        """The server took (``echoed``) or refused our oldest line to ``target``: it is no longer
        at risk. Echoes come in the order the lines went, so an echo whose target we cannot
        match (a server that spells it differently) takes the oldest line."""
        folded = _fold(target)
        for index, line in enumerate(self._unechoed):
            if _fold(line.text.split(" ", 2)[1]) == folded:
                del self._unechoed[index]
                line.settle()
                return
        if echoed and self._unechoed:
            self._unechoed.popleft().settle()

    async def flushed(self) -> None:
        """Wait until every queued line is written (callers bound it with ``asyncio.timeout``)."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.shield(writer)

    async def _settled(self) -> None:
        """Wait until every line someone waits on is settled (bounded by the caller)."""
        await self.flushed()
        waited = [line.settled for line in self._unechoed if line.settled is not None]
        if waited:
            await asyncio.wait(waited)

    # ---- closing -----------------------------------------------------------------------------

    async def close(self, reason: str = "", *, fail_unsettled: bool = True) -> None:
        """Write what is queued and wait for its echoes (at most :data:`CLOSE_GRACE_S`), then hang up.

        ``fail_unsettled``: lines still unsettled then fail their futures (an idle connection
        closed: their Matrix events are given up on and their senders told). False at shutdown:
        they stay unsettled, so their events are not recorded handled and are replayed at the
        next start."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self._settled()
        if self._writer is not None:
            self._writer.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._echo_check is not None:
            self._echo_check.cancel()
            self._echo_check = None
        if fail_unsettled:
            for line in self.take_unsent():
                line.fail(ConnectionError(f"the connection to {self.host} was closed"))
        connection = self._connection
        if connection is not None and connection.is_connected():
            with contextlib.suppress(Exception):
                connection.disconnect(reason)
        self._connection = None

    def _hang_up(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.disconnect("")


_RFC1459_UPPER = str.maketrans("[]\\~", "{}|^")


def _fold(name: str) -> str:
    # rfc1459 folding, the widest of the usual case mappings: it only decides which of our own
    # unechoed lines an echo or a refusal stands for.
    return name.lower().translate(_RFC1459_UPPER)


__all__ = ["IrcLink", "RegistrationFailed"]
