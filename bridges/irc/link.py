"""One connection to an IRC server, on the ``irc`` package's asyncio client: the socket, the
encoding and the loop. What the connection knows (registration, CAP, ISUPPORT, our nick, our
channels) is :class:`~bridges.irc.connection_state.ConnectionState`; how lines go out (pacing,
the echo ledger, keepalive) is in ``outgoing.py``; both are pure, and this module asks them.

Lines reach ``send`` as :class:`~bridges.irc.lines.Line` values, already made safe by the output
gate (``output_gate.py``) and built by ``lines.py``, which refuses CR, LF and NUL.

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
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import irc.client
import irc.client_aio
import irc.connection
from jaraco.stream.buffer import LenientDecodingLineBuffer

from bridgekit import bench_trace
from bridges.irc.account_login import AccountLogin
from bridges.irc.connection_state import ECHO_CAP, ConnectionState, NickChooser
from bridges.irc.identify import Identification, NickServ
from bridges.irc.lean import LazyEvent
from bridges.irc.lines import Line, ping
from bridges.irc.outgoing import ECHO_PATIENCE_S, ECHOED, EchoLedger, Keepalive, OutLine, Silence, TokenBucket

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 5.0
"""How long closing a connection waits for its queued lines to be written and echoed."""

_TRACED = frozenset({"pubmsg", "privmsg", "pubnotice", "privnotice", "action"})
"""The events whose arrival the benchmark hook stamps (``BRIDGEKIT_BENCH_TRACE``): messages."""

EventHandler = Callable[["IrcLink", irc.client.Event], None]


class RegistrationFailed(ConnectionError):
    pass


class AccountRefused(RegistrationFailed):
    """The server or its services refused the account (SASL 904, NickServ's "Invalid password"):
    trying again with the same password cannot help. The message is the server's reason."""


class Wire(Protocol):
    """The socket side of a connection, as the ``irc`` package's connection offers it."""

    def is_connected(self) -> bool: ...
    def send_raw(self, string: str) -> None: ...
    def disconnect(self, message: str = "") -> None: ...


class _NoFeatures:
    """In place of the ``irc`` package's own parse of ISUPPORT, which nothing here reads
    (``ConnectionState`` keeps ISUPPORT, shared between connections): 1.2 KB a connection."""

    def load(self, _arguments: object) -> None:
        pass


_NO_FEATURES = _NoFeatures()


class _LenientConnection(irc.client_aio.AioConnection):  # type: ignore[misc]
    # The default strict decoder drops the whole connection on one line that is not UTF-8.
    buffer_class = LenientDecodingLineBuffer

    def __init__(self, reactor: irc.client.Reactor) -> None:
        super().__init__(reactor)
        self.features = _NO_FEATURES

    async def open_and_register(
        self, host: str, port: int, nick: str, *, opening: tuple[str, ...], password: str | None, username: str,
        realname: str, connect_factory: irc.connection.AioFactory,
    ) -> None:
        """``AioConnection.connect``, with ``opening`` (``CAP LS 302``) written before PASS, NICK and
        USER: the package's own connect writes those at once and has no hook before them."""
        self.buffer = self.buffer_class()
        self.handlers: dict[str, object] = {}
        self.real_server_name = ""
        self.real_nickname = self.nickname = nick
        self.server, self.port, self.server_address = host, port, (host, port)
        self.username, self.ircname, self.password = username, realname, password
        self.connect_factory = connect_factory
        protocol = self.protocol_class(self, self.reactor.loop)
        self.transport, self.protocol = await connect_factory(protocol, self.server_address)
        self.connected = True
        self.reactor._on_connect(self.protocol, self.transport)
        for line in opening:
            self.send_raw(line)
        if password:
            self.pass_(password)
        self.nick(nick)
        self.user(username, realname)


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
        account: AccountLogin | None = None,
        nickserv: NickServ | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
        members: bool = False,
    ) -> None:
        """``account``: a puppeted connection identifies with it (SASL, else NickServ: ``identify.py``)
        before :meth:`connect` returns; it stays in memory only, with this link. ``members``: keep
        everyone in our channels (a keeper's listener), not only ourselves."""
        self.host, self.port, self.tls = host, port, tls
        self.ident = ident
        self.realname = realname
        self.password = password
        self._on_event = on_event
        self._pace = pace
        """Awaited before each connect: the network's pacing of new connections (``reconnects.py``)."""
        # With echo-message the server sends each of our lines back once it has taken it: lines
        # written but not yet echoed are the ones a dropped connection may have lost.
        identification = Identification(account, nickserv) if account is not None else None
        self.state = ConnectionState(nick, caps=(*caps, ECHO_CAP), next_nick=next_nick, members=members,
                                     identification=identification)
        now = time.monotonic()
        self._bucket = TokenBucket(lines_per_second, burst, now)
        self._ledger = EchoLedger(patience=ECHO_PATIENCE_S)
        self._silence = Keepalive(keepalive, now)
        self._echo_check: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._queue: list[OutLine] = []
        """Behind the pacing (a list: a deque costs 760 bytes even empty, and this is short)."""
        self._writer: asyncio.Task[None] | None = None
        self._welcome = LazyEvent()
        self._closed = LazyEvent()
        self._connection: Wire | None = None
        self.lines_sent = 0

    # ---- state -------------------------------------------------------------------------------

    @property
    def nick(self) -> str:
        return self.state.nick

    @property
    def isupport(self) -> Mapping[str, str]:
        return self.state.isupport

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.is_connected() and self.state.registered

    def endpoints(self) -> tuple[int, str, int] | None:
        """(our port, the server's address, the server's port) while connected: what identd matches."""
        transport = getattr(self._connection, "transport", None)
        if transport is None:
            return None
        local, peer = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
        if not isinstance(local, tuple) or not isinstance(peer, tuple):
            return None
        return int(local[1]), str(peer[0]), int(peer[1])

    @property
    def host_allowance(self) -> str:
        """Our host as others see it is unknown until the server says: assume the longest."""
        return "h" * 63

    # ---- connecting --------------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (two waits share it)
        """Connect and register (and identify, with an account); raises RegistrationFailed (its
        AccountRefused when the account was refused) or OSError."""
        if self._pace is not None:
            await self._pace()
        reactor = _Reactor(loop=asyncio.get_running_loop())
        reactor.add_global_handler("all_events", lambda _connection, event: self.hear(event), -10)
        connection: _LenientConnection = reactor.server()
        self.attach(connection)
        factory = (
            irc.connection.AioFactory(ssl=ssl.create_default_context()) if self.tls else irc.connection.AioFactory()
        )
        await connection.open_and_register(
            self.host, self.port, self.state.wanted_nick, opening=tuple(line.text for line in self.state.opening()),
            password=self.password, username=self.ident, realname=self.realname, connect_factory=factory,
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
            reason = self.state.failure or ("timed out" if not finished else "the server closed the connection")
            self._hang_up()
            identification = self.state.identification
            if identification is not None and identification.failure is not None:
                raise AccountRefused(identification.failure)
            if identification is not None and self.state.registered:
                reason = f"{reason} ({identification.phase.value})"  # e.g. NickServ never answered
            raise RegistrationFailed(f"{self.host}:{self.port}: registration failed: {reason}")
        if self._silence.interval > 0:
            self._keepalive = asyncio.create_task(self._watch_silence(connection))

    def attach(self, connection: Wire) -> None:
        """Use ``connection`` from now on; registration starts again (:meth:`connect` attaches the
        ``irc`` package's connection; a unit test, a stand-in that records what is written)."""
        self._connection = connection
        self.state.connecting()
        self._welcome.clear()
        self._closed.clear()

    async def _watch_silence(self, connection: Wire) -> None:
        """See :class:`~bridges.irc.outgoing.Keepalive`."""
        while self._connection is connection and connection.is_connected():
            await asyncio.sleep(self._silence.poll_interval)
            now = time.monotonic()
            silence = self._silence.check(now)
            if silence is Silence.GIVE_UP:
                log.warning("%s: no word from the server in %.0f s; reconnecting", self.host,
                            self._silence.silent_for(now))
                self._hang_up()
                return
            if silence is Silence.PING:
                with contextlib.suppress(Exception):
                    self.send_now(ping(f"keepalive-{int(time.time())}"))

    def hear(self, event: irc.client.Event) -> None:
        """One event from the server (the reactor calls this for every line it parsed)."""
        self._silence.heard(time.monotonic())
        if bench_trace.enabled and event.type in _TRACED and event.arguments:
            bench_trace.record("irc_in", str(event.arguments[0]))
        heard = self._ledger.hear(event, own=event.type in ECHOED and self.state.is_own(event.source))
        for settled in heard.settled:
            settled.settle()
        if heard.given_up:
            log.warning("%s: the server took %d line(s) without echoing them; not waiting for them", self.host,
                        heard.given_up)
        if heard.swallowed:
            return  # our own line, back from the server (echo-message): no news to the bridge
        reaction = self.state.hear(event)
        if self.state.ready:
            self._welcome.set()
        elif event.type == "disconnect":
            self._closed.set()
            self._welcome.clear()
        for reply in reaction.send:
            self.send_now(reply)
        if reaction.hang_up:
            self._hang_up()
        if not reaction.forward:
            return
        try:
            self._on_event(self, event)
        except Exception:
            log.exception("handling IRC %s from %s failed", event.type, self.host)

    # ---- writing -----------------------------------------------------------------------------

    def send(self, line: Line) -> None:
        """Queue one line; paced. Lines keep their order.

        Raises ConnectionError when the connection is down: the caller's message is retried later
        rather than queued for a connection that may never come back. Lines already queued when
        it drops stay queued (see :meth:`take_unsent`).
        """
        self.pass_on(OutLine(line))

    def send_tracked(self, line: Line, *, key: str | None = None) -> asyncio.Future[None]:
        """:meth:`send`, and a future done once the line is settled (see the module docstring).
        ``key`` (idempotency, for a keeper's links) means nothing in the bridge's own process."""
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pass_on(OutLine(line, settled))
        return settled

    def pass_on(self, line: OutLine) -> None:
        """Queue a line, with its future if it has one (lines another connection handed over)."""
        if not self.connected:
            raise ConnectionError(f"not connected to {self.host}")
        if not self._bucket.paces or (not self._queue and self._bucket.take(time.monotonic())):
            self._write(line)
            return
        self._queue.append(line)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    def send_now(self, line: Line) -> None:
        """Write a protocol line at once (PONG, NICK during registration, QUIT): not paced."""
        self._write(OutLine(line), traced=False)

    async def _drain(self) -> None:
        while self._queue:
            if not self._bucket.take(time.monotonic()):
                await asyncio.sleep(self._bucket.wait())
                continue
            try:
                self._write(self._queue[0])
            except ConnectionError:
                return  # the connection dropped: the line stays first in the queue (take_unsent)
            del self._queue[0]

    @property
    def has_unsent(self) -> bool:
        return bool(self._queue or self._ledger)

    def requeue(self, lines: list[OutLine]) -> None:
        """Put lines taken with :meth:`take_unsent` back in front (a reconnect failed)."""
        self._queue[:0] = lines

    def take_unsent(self) -> list[OutLine]:
        """The lines a dropped connection may have lost, in order: those written but never echoed
        (when the server offers echo-message), then those still queued behind the pacing. Both
        are left empty. Whoever replaces the connection sends them (:meth:`pass_on`), so a Matrix
        message that was accepted is not lost with the connection (at worst a line the server
        took just before the drop comes twice); their futures go with them."""
        if self._writer is not None:
            self._writer.cancel()
        lines = [*self._ledger.take_all(), *self._queue]
        self._queue.clear()
        return lines

    def _write(self, line: OutLine, *, traced: bool = True) -> None:
        """``traced``: the benchmark hook may stamp it: messages, never protocol lines (a NickServ
        IDENTIFY, sent at once, carries a password)."""
        connection = self._connection
        if connection is None or not connection.is_connected():
            raise ConnectionError(f"not connected to {self.host}")
        connection.send_raw(line.line.text)
        if traced and bench_trace.enabled:
            bench_trace.record("irc_out", line.line.trailing if line.line.trailing is not None else line.line.text)
        self.lines_sent += 1
        if not (self.state.echo and self._ledger.tracks(line.line)):
            line.settle()  # no echo will come: written is as far as we can tell
            return
        for overflow in self._ledger.written(line, time.monotonic()):
            overflow.settle()
        if self._echo_check is None:
            self._echo_check = asyncio.get_running_loop().call_later(self._ledger.patience, self._check_echoes)

    def _check_echoes(self) -> None:
        """Runs while lines wait for their echo: a PING barrier goes out when one is due."""
        self._echo_check = None
        if not self._ledger:
            return
        barrier = self._ledger.barrier_due(time.monotonic())
        if barrier is not None:
            with contextlib.suppress(ConnectionError):
                self.send_now(barrier)
                self._ledger.barrier_sent()
        self._echo_check = asyncio.get_running_loop().call_later(self._ledger.patience, self._check_echoes)

    async def flushed(self) -> None:
        """Wait until every queued line is written (callers bound it with ``asyncio.timeout``)."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.shield(writer)

    async def _settled(self) -> None:
        """Wait until every line someone waits on is settled (bounded by the caller)."""
        await self.flushed()
        waited = [line.settled for line in self._ledger if line.settled is not None]
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


__all__ = ["IrcLink", "OutLine", "RegistrationFailed", "Wire"]
