"""A plain IRC client for the demo and the tests: a human on the IRC side of a bridge, built on
``irc.client_aio``.

Every line the server sends is kept, in order, as a :class:`Line` in :attr:`IrcTestClient.received`,
with its exact bytes as they came off the wire (CR LF included), so a test can check what the
bridge really sent: ``assert len(line.raw_bytes) <= 512``. Tests wait on conditions, never on
sleeps: :meth:`IrcTestClient.wait_for` re-checks its predicate each time a line arrives and fails
at a deadline with the last lines received in the message.

What the ``irc`` package does not do the way tests need, this module does itself:

- CAP negotiation before registration (``irc.client_aio`` sends NICK/USER at once);
- exact raw bytes per line (its line buffers strip the terminator and decode), via
  :class:`RawLineBuffer`, a ``LenientDecodingLineBuffer`` that also hands out the bytes; a line
  that is not UTF-8 is decoded as Latin-1 instead of dropping the connection;
- sending lines longer than 512 bytes (the package refuses them; tests must be able to send one to
  see what the server or bridge does), while CR, LF and NUL inside a line are refused here
  (the package lets CR and NUL through).

Its event machinery still runs on every line (PING is answered by the package's handler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from irc.client_aio import AioConnection, AioReactor, IrcProtocol
from irc.connection import AioFactory
from jaraco.stream.buffer import LenientDecodingLineBuffer

from bridgekit.demo.irc_lines import Line, decode_line, parse_line

__all__ = ["IrcCommandError", "IrcTestClient", "IrcWaitTimeout", "Line", "RawLineBuffer", "parse_line"]

log = logging.getLogger(__name__)

Predicate = Callable[["Line"], bool]

# Numerics that end a command of ours with an error, by the command they answer.
_JOIN_ERRORS = frozenset({"403", "405", "437", "471", "473", "474", "475", "476", "477", "489"})
_PART_ERRORS = frozenset({"403", "442"})
_NICK_ERRORS = frozenset({"431", "432", "433", "435", "436", "437", "438", "447", "484"})
_REGISTRATION_ERRORS = frozenset({"432", "433", "436", "437", "464", "465"})

class RawLineBuffer(LenientDecodingLineBuffer):  # type: ignore[misc]
    """A ``LenientDecodingLineBuffer`` whose :meth:`raw_lines` also yields each line's exact bytes."""

    buffer: bytes

    def raw_lines(self) -> Iterator[tuple[bytes, str]]:
        """``(raw bytes with terminator, decoded text without it)`` per complete line."""
        buf: bytes = self.buffer
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            raw = buf[start : end + 1]
            start = end + 1
            body = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            yield raw, decode_line(body)
        self.buffer = buf[start:]


class IrcWaitTimeout(AssertionError):
    """What a test waited for did not arrive before the deadline (or the connection closed)."""


class IrcCommandError(RuntimeError):
    """The server refused a command of ours (registration, CAP, JOIN, NICK, ...)."""

    def __init__(self, message: str, line: Line | None = None) -> None:
        super().__init__(message)
        self.line = line


class _Protocol(IrcProtocol):  # type: ignore[misc]
    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.on_connection_lost(exc)
        super().connection_lost(exc)


class _RecordingConnection(AioConnection):  # type: ignore[misc]
    """``AioConnection`` that hands every raw line to the test client before the package sees it."""

    buffer_class = RawLineBuffer
    protocol_class = _Protocol

    def __init__(self, reactor: AioReactor) -> None:
        super().__init__(reactor)
        self.line_sink: Callable[[bytes, str], None] = lambda raw, text: None
        self.lost_sink: Callable[[Exception | None], None] = lambda exc: None

    async def connect_with_caps(
        self,
        host: str,
        port: int,
        nickname: str,
        *,
        username: str,
        realname: str,
        password: str | None,
        negotiate_caps: bool,
    ) -> None:
        """``AioConnection.connect`` with ``CAP LS 302`` sent before NICK/USER when asked, so
        the server holds registration until ``CAP END``."""
        self.buffer: RawLineBuffer = self.buffer_class()
        self.handlers: dict[str, Any] = {}
        self.real_server_name = ""
        self.real_nickname = nickname
        self.server = host
        self.port = port
        self.server_address = (host, port)
        self.nickname = nickname
        self.username = username
        self.ircname = realname
        self.password = password
        self.connect_factory = AioFactory()
        protocol_instance = self.protocol_class(self, self.reactor.loop)
        transport, protocol = await self.connect_factory(protocol_instance, self.server_address)
        self.transport = transport
        self.protocol = protocol
        self.connected = True
        self.reactor._on_connect(self.protocol, self.transport)
        if negotiate_caps:
            self.send_raw("CAP LS 302")
        if password:
            self.pass_(password)
        self.nick(nickname)
        self.user(username, realname)

    def process_data(self, new_data: bytes) -> None:
        self.buffer.feed(new_data)
        for raw, text in self.buffer.raw_lines():
            self.line_sink(raw, text)
            if not text:
                continue
            try:
                self._process_line(text)
            except Exception:  # the package's parser must not cost us the connection
                log.exception("irc package failed on line %r", text)

    def _prep_message(self, string: str) -> bytes:
        if any(ch in string for ch in "\r\n\0"):
            raise ValueError(f"CR, LF and NUL cannot be sent inside a line: {string!r}")
        # No 512-byte cap here (the package has one): tests send over-long lines on purpose.
        data: bytes = self.encode(string) + b"\r\n"
        return data

    def on_connection_lost(self, exc: Exception | None) -> None:
        self.lost_sink(exc)


class IrcTestClient:
    """One IRC connection for a test. Create with ``await IrcTestClient.connect(...)``."""

    def __init__(self, connection: _RecordingConnection, requested_nick: str) -> None:
        self._conn = connection
        self._nick = requested_nick
        self.received: list[Line] = []
        """Every line from the server, in order of arrival."""
        self.caps_available: dict[str, str] = {}
        """Capabilities the server offered (``CAP LS``), with their values."""
        self.caps_enabled: set[str] = set()
        self.isupport: dict[str, str] = {}
        """ISUPPORT (005) tokens, e.g. ``isupport["NICKLEN"]``."""
        self.closed = False
        self.close_reason: str | None = None
        self._changed = asyncio.Event()
        connection.line_sink = self._on_line
        connection.lost_sink = self._on_lost

    # -- connecting ----------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        *,
        caps: Sequence[str] = (),
        username: str | None = None,
        realname: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> IrcTestClient:
        """Connect, negotiate ``caps`` (all must be granted) and return once 001 arrived."""
        reactor = AioReactor(loop=asyncio.get_running_loop())
        reactor.connection_class = _RecordingConnection
        conn: _RecordingConnection = reactor.server()
        client = cls(conn, nick)
        try:
            async with asyncio.timeout(timeout):
                await conn.connect_with_caps(
                    host, port, nick, username=username or nick, realname=realname or nick,
                    password=password, negotiate_caps=bool(caps),
                )
                if caps:
                    await client._negotiate_caps(list(caps), timeout)
                welcome = await client.wait_for(
                    lambda ln: ln.command == "001" or ln.command in _REGISTRATION_ERRORS or ln.command == "ERROR",
                    timeout,
                )
        except BaseException as exc:
            await client.close()
            if isinstance(exc, TimeoutError):
                raise IrcWaitTimeout(
                    f"{nick} not registered on {host}:{port} within {timeout} s; {client._recent()}"
                ) from exc
            raise
        if welcome.command != "001":
            await client.close()
            raise IrcCommandError(f"registration of {nick} refused: {welcome.raw}", welcome)
        return client

    async def _negotiate_caps(self, caps: list[str], timeout: float) -> None:  # noqa: ASYNC109
        # CAP LS 302 replies may span several lines: ":srv CAP * LS * :a b" ... ":srv CAP * LS :c".
        done = await self.wait_for(
            lambda ln: ln.command == "CAP" and len(ln.params) >= 3 and ln.params[1] == "LS" and ln.params[2] != "*",
            timeout,
        )
        for line in self.received:
            if line.command == "CAP" and len(line.params) >= 3 and line.params[1] == "LS":
                for item in line.text.split():
                    name, _, value = item.partition("=")
                    self.caps_available[name] = value
            if line is done:
                break
        missing = [cap for cap in caps if cap not in self.caps_available]
        if missing:
            raise IrcCommandError(f"server does not offer caps {missing}; it offers {sorted(self.caps_available)}")
        since = self.mark()
        self.send_raw("CAP REQ :" + " ".join(caps))
        answer = await self.wait_for(
            lambda ln: ln.command == "CAP" and len(ln.params) >= 3 and ln.params[1] in ("ACK", "NAK"),
            timeout, since=since,
        )
        if answer.params[1] == "NAK":
            raise IrcCommandError(f"server refused caps: {answer.raw}", answer)
        self.send_raw("CAP END")

    # -- state ---------------------------------------------------------------------------------
    @property
    def nick(self) -> str:
        """The current nick (as the server confirmed it: 001, then our own NICK changes)."""
        return self._nick

    def _on_line(self, raw: bytes, text: str) -> None:
        line = parse_line(raw, text, time.monotonic())
        self.received.append(line)
        if line.params and (line.command == "001" or (line.command == "NICK" and line.is_from(self._nick))):
            self._nick = line.params[0]
        elif line.command == "005":
            for token in line.params[1:-1]:
                key, _, value = token.partition("=")
                self.isupport[key] = value
        elif line.command == "CAP" and len(line.params) >= 3:
            sub, names = line.params[1], line.text.split()
            if sub == "ACK":
                for name in names:
                    if name.startswith("-"):
                        self.caps_enabled.discard(name[1:])
                    else:
                        self.caps_enabled.add(name)
            elif sub == "DEL":
                self.caps_enabled.difference_update(names)
        elif line.command == "ERROR":
            self.close_reason = line.text
        self._notify()

    def _on_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.close_reason is None:
            self.close_reason = repr(exc) if exc is not None else "connection closed"
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter (they re-check their condition), then arm a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    def mark(self) -> int:
        """The index the next line will get: ``wait_for(..., since=client.mark())`` ignores older lines."""
        return len(self.received)

    def lines(self, predicate: Predicate | None = None, *, since: int = 0) -> list[Line]:
        """Received lines (from index ``since``) that match ``predicate``."""
        return [ln for ln in self.received[since:] if predicate is None or predicate(ln)]

    def _recent(self, n: int = 25) -> str:
        tail = "\n".join(f"  {ln.raw}" for ln in self.received[-n:])
        state = f"closed ({self.close_reason})" if self.closed else "open"
        return f"connection {state}; last {min(n, len(self.received))} lines received:\n{tail}"

    # -- waiting -------------------------------------------------------------------------------
    async def wait_for(self, predicate: Predicate, timeout: float = 30.0, *, since: int = 0) -> Line:  # noqa: ASYNC109
        """The first line (from index ``since``) matching ``predicate``, waiting for it if needed."""
        return (await self.wait_for_count(predicate, 1, timeout, since=since))[0]

    async def wait_for_count(
        self, predicate: Predicate, n: int, timeout: float = 30.0, *, since: int = 0  # noqa: ASYNC109
    ) -> list[Line]:
        """The first ``n`` lines (from index ``since``) matching ``predicate``, once there are ``n``."""
        matched: list[Line] = []
        checked = since
        end = time.monotonic() + timeout
        while True:
            for line in self.received[checked:]:
                if predicate(line):
                    matched.append(line)
                    if len(matched) >= n:
                        return matched
            checked = max(checked, len(self.received))
            if self.closed:
                raise IrcWaitTimeout(
                    f"{self._nick}: connection closed with {len(matched)}/{n} matching lines; {self._recent()}"
                )
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise IrcWaitTimeout(
                    f"{self._nick}: {len(matched)}/{n} matching lines after {timeout} s; {self._recent()}"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _command(
        self, line: str, done: Predicate, errors: frozenset[str], subject: str, timeout: float  # noqa: ASYNC109
    ) -> Line:
        """Send ``line``; the first answer matching ``done`` or an error numeric about ``subject``."""
        since = self.mark()
        self.send_raw(line)
        folded = subject.casefold()

        def finished(ln: Line) -> bool:
            if done(ln):
                return True
            return ln.command in errors and any(p.casefold() == folded for p in ln.params[1:2])

        answer = await self.wait_for(finished, timeout, since=since)
        if answer.command in errors:
            raise IrcCommandError(f"{self._nick}: {line!r} refused: {answer.raw}", answer)
        return answer

    # -- commands ------------------------------------------------------------------------------
    def send_raw(self, line: str) -> None:
        """Send one line as is (CR LF is added; CR, LF and NUL inside are refused)."""
        if self.closed:
            raise ConnectionError(f"{self._nick}: connection closed ({self.close_reason})")
        self._conn.send_raw(line)

    async def join(self, channel: str, key: str = "", *, timeout: float = 30.0) -> Line:  # noqa: ASYNC109
        """JOIN and wait until the server confirmed it and sent the names list; the JOIN line."""
        folded = channel.casefold()
        joined = await self._command(
            f"JOIN {channel} {key}".rstrip(),
            lambda ln: ln.command == "JOIN" and ln.is_from(self._nick) and (ln.target or "").casefold() == folded,
            _JOIN_ERRORS, channel, timeout,
        )
        await self.wait_for(
            lambda ln: ln.command == "366" and len(ln.params) > 1 and ln.params[1].casefold() == folded,
            timeout, since=self.received.index(joined),
        )
        return joined

    async def part(self, channel: str, reason: str = "", *, timeout: float = 30.0) -> Line:  # noqa: ASYNC109
        """PART and wait for the server's confirmation."""
        folded = channel.casefold()
        return await self._command(
            f"PART {channel} :{reason}" if reason else f"PART {channel}",
            lambda ln: ln.command == "PART" and ln.is_from(self._nick) and (ln.target or "").casefold() == folded,
            _PART_ERRORS, channel, timeout,
        )

    async def privmsg(self, target: str, text: str) -> None:
        self.send_raw(f"PRIVMSG {target} :{text}")

    async def notice(self, target: str, text: str) -> None:
        self.send_raw(f"NOTICE {target} :{text}")

    async def action(self, target: str, text: str) -> None:
        """A ``/me`` (CTCP ACTION)."""
        self.send_raw(f"PRIVMSG {target} :\x01ACTION {text}\x01")

    async def topic(self, channel: str, text: str) -> None:
        """Set the topic (``""`` clears it)."""
        self.send_raw(f"TOPIC {channel} :{text}")

    async def kick(self, channel: str, nick: str, reason: str = "") -> None:
        self.send_raw(f"KICK {channel} {nick} :{reason}" if reason else f"KICK {channel} {nick}")

    async def mode(self, target: str, modes: str) -> None:
        """``MODE target modes`` (``modes`` may carry arguments: ``"+o bob"``)."""
        self.send_raw(f"MODE {target} {modes}")

    async def change_nick(self, new: str, *, timeout: float = 30.0) -> Line:  # noqa: ASYNC109
        """NICK and wait for the server's confirmation (:class:`IrcCommandError` if refused)."""
        old = self._nick
        return await self._command(
            f"NICK {new}", lambda ln: ln.command == "NICK" and ln.is_from(old), _NICK_ERRORS, new, timeout
        )

    async def quit(self, reason: str = "", *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """QUIT and wait until the server closed the connection."""
        if not self.closed:
            self.send_raw(f"QUIT :{reason}" if reason else "QUIT")
            await self.wait_closed(timeout)
        await self.close()

    async def wait_closed(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the connection is closed (by the server, or by :meth:`close`)."""
        end = time.monotonic() + timeout
        while not self.closed:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise IrcWaitTimeout(f"{self._nick}: connection still open after {timeout} s; {self._recent()}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Drop the connection (QUIT first if still open). Idempotent."""
        transport: Any = getattr(self._conn, "transport", None)
        if transport is None:
            return
        if not self.closed and not transport.is_closing():
            with contextlib.suppress(Exception):
                self._conn.send_raw("QUIT :test client closed")
        if not transport.is_closing():
            transport.close()
        # connection_lost runs on the next loop iterations; wait for it so nothing leaks.
        await self.wait_closed(timeout)

    def __repr__(self) -> str:
        return f"IrcTestClient(nick={self._nick!r}, lines={len(self.received)}, closed={self.closed})"
