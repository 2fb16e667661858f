"""One IRC connection as a keeper holds it: an :class:`~bridges.irc.link.IrcLink` (which answers
PINGs and keeps CAP, ISUPPORT and channel state), the bridge's commands for it run in order, and
connecting again when the server drops it, without the bridge knowing: the lines it had queued
or not yet seen echoed go out again after the channels are joined again.

What it hears goes to the keeper (``publish``), except its own disconnects and registration
noise; what becomes of the bridge's commands goes back through ``outcome``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any, Protocol

import irc.client

from bridges.irc.account_login import AccountLogin
from bridges.irc.identify import NickServ
from bridges.irc.keeper.protocol import Command, ConnectionSpec, refused_event, snapshot
from bridges.irc.lean import LazyEvent
from bridges.irc.lines import Line, join
from bridges.irc.link import AccountRefused, IrcLink, RegistrationFailed

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 2.0
RECONNECT_MAX_S = 120.0


@dataclass(frozen=True)
class Outcome:
    """What became of one command: the keeper acknowledges its entry and answers the bridge."""

    entry: str
    command: Command
    ok: bool
    error: str = ""
    data: dict[str, Any] | None = None


class KeeperHooks(Protocol):
    """What a held connection asks of its keeper (the keeper implements it)."""

    def publish(self, conn: str, event: irc.client.Event) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
    def channels_changed(self, conn: str, channels: list[str]) -> None: ...
    async def already_sent(self, network: str, key: str) -> bool: ...
    async def connect_turn(self) -> None: ...


MEMBERSHIP_OF_OURS = frozenset({"join", "part", "kick"})
NOISE = frozenset({
    "yourhost", "created", "myinfo", "motdstart", "motd", "endofmotd", "nomotd", "luserclient", "luserop",
    "luserunknown", "luserchannels", "luserme", "n_local", "n_global", "statsconn", "luserconns",
    "all_raw_messages",  # the irc package's copy of every line, beside the parsed event: the bridge reads none
    "ping", "pong",  # keepalive, the keeper's own business: 10,000 idle connections make 170 a second
})
"""What every registration says and the bridge never uses: not published (a keeper reconnecting
10,000 connections would otherwise fill the stream with 200,000 lines of MOTD)."""
OTHERS_IN_CHANNELS = frozenset({"pubmsg", "pubnotice", "action", "ctcp", "ctcpreply", "join", "part", "quit", "nick",
                                "kick"})
"""What others say and do in our channels: the bridge reads it from the listener's connection only
(``connector._handle_event``; a user's own connection matters for private messages and its own
membership). Published from every connection, each line and JOIN in a channel of 100 bridged
users would be published 100 times (measured: 19,888 entries for 402 connections coming back
after a keeper restart, 20 to a channel; 100 to a channel is 100 times each connection)."""


class HeldConnection:
    def __init__(self, spec: ConnectionSpec, hooks: KeeperHooks, *, password: str | None,
                 account: AccountLogin | None = None, channels: list[str] | None = None,
                 after: HeldConnection | None = None) -> None:
        self.spec = spec
        self._after = after
        """The same connection ID's previous connection, still closing: this one waits for it (its
        nick is free then)."""
        self.closing = False
        """A close is queued: the next open of this ID is a new connection."""
        self.finished = LazyEvent()
        self._hooks = hooks
        nicks = spec.next_nicks

        def next_nick(attempt: int) -> str:
            return nicks[attempt - 1] if attempt <= len(nicks) else f"{spec.nick[:20]}{attempt}"

        # A puppet identifies here, with its account (SASL, else NickServ), at every connect; the
        # listener (the bot) keeps every member, so a bridge adopting it learns who is there.
        self.link = IrcLink(
            host=spec.host, port=spec.port, tls=spec.tls, nick=spec.nick, ident=spec.ident, realname=spec.realname,
            password=password, on_event=self._heard, lines_per_second=spec.lines_per_second, burst=spec.burst,
            next_nick=next_nick, caps=spec.caps, keepalive=spec.keepalive, members=spec.members,
            account=account, nickserv=NickServ(spec.nickserv_nick, spec.nickserv_identify),
        )
        self.refused: str | None = None
        """The server refused the account (its reason): never tried again with the same password."""
        self._channels = list(channels or [])
        """Joined again after a reconnect (kept in Redis for the keeper's own restart)."""
        self._jobs: list[tuple[str, Command]] = []
        """(a list, not an asyncio.Queue: three deques and an Event, 3 KB, for every connection held)"""
        self._worker: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._up = LazyEvent()
        self._reconnecting: asyncio.Task[None] | None = None
        self.closed = False

    # ---- commands, in order -------------------------------------------------------------------

    def submit(self, entry: str, command: Command) -> None:
        self._jobs.append((entry, command))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        if self._after is not None:
            await self._after.finished.wait()
            self._after = None
        while self._jobs:
            entry, command = self._jobs.pop(0)
            try:
                await self._run(entry, command)
            except Exception as error:
                log.exception("%s: %s failed", self.spec.conn, command.op)
                self._hooks.outcome(Outcome(entry, command, False, str(error)))
        self._worker = None  # a finished task kept for the connection's life: 288 bytes each

    async def _run(self, entry: str, command: Command) -> None:
        if command.op == "open":
            try:
                await self.ensure_up()
            except AccountRefused as refused:  # the bridge raises it again: the login flow shows why
                self._hooks.outcome(Outcome(entry, command, False, str(refused), data={"refused": True}))
                return
            self._hooks.outcome(Outcome(entry, command, True, data=snapshot(self.link.state)))
        elif command.op == "send":
            await self._send(entry, command)
        elif command.op == "close":
            await self.close(str(command.data.get("reason", "")))
            self._hooks.outcome(Outcome(entry, command, True))

    async def _send(self, entry: str, command: Command) -> None:
        data = command.data
        line = Line(str(data["command"]), tuple(str(p) for p in data.get("params", ())),
                    None if data.get("trailing") is None else str(data["trailing"]))
        key = data.get("key")
        if key is not None and (key in self._inflight or await self._hooks.already_sent(self.spec.network, key)):
            # Sent before (a resent command, after a bridge or keeper restart): never twice.
            earlier = self._inflight.get(key)
            if earlier is not None:
                await asyncio.wait({earlier})
            self._hooks.outcome(Outcome(entry, command, True, data={"repeat": True}))
            return
        if data.get("now"):
            await self._until_up()
            self.link.send_now(line)
            self._hooks.outcome(Outcome(entry, command, True))
            return
        while True:
            await self._until_up()
            try:
                settled = self.link.send_tracked(line)
                break
            except ConnectionError:
                self._up.clear()  # dropped meanwhile: the reconnect sets it again
        if key is not None:
            self._inflight[key] = settled
        settled.add_done_callback(lambda done: self._settled(entry, command, done, key))

    def _settled(self, entry: str, command: Command, done: asyncio.Future[None], key: str | None) -> None:
        if key is not None:
            self._inflight.pop(key, None)
        error = "" if done.cancelled() or done.exception() is None else str(done.exception())
        self._hooks.outcome(Outcome(entry, command, not error and not done.cancelled(), error))

    async def _until_up(self) -> None:
        """Raises AccountRefused once the server refused the account (nothing is tried again)."""
        while not self._up.is_set():
            if self.refused is not None:
                raise AccountRefused(self.refused)
            if self.closed:
                await self._up.wait()  # as before: a closed connection's commands wait, unanswered
                return
            if self._reconnecting is None or self._reconnecting.done():
                self._reconnecting = asyncio.create_task(self._reconnect())
            reconnecting, up = self._reconnecting, asyncio.ensure_future(self._up.wait())
            try:
                await asyncio.wait({up, reconnecting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()

    # ---- connecting --------------------------------------------------------------------------------

    async def ensure_up(self) -> None:
        """Connected and registered (adopted as it is when it already is)."""
        if self.link.connected:
            self._up.set()
            return
        await self._until_up()

    async def _reconnect(self) -> None:
        """Connect (again), waiting 2 s, 4 s ... (with jitter) between failures; then join the
        channels again and send what the dropped connection had not settled."""
        delay = RECONNECT_FIRST_S
        unsent = self.link.take_unsent()
        while not self.closed:
            await self._hooks.connect_turn()
            try:
                await self.link.connect()
                break
            except AccountRefused as refused:
                log.warning("%s: the server refused the account: %s", self.spec.conn, refused)
                self.refused, self.closed, self.closing = str(refused), True, True
                self.finished.set()  # the next open of this ID is a new connection (a new password)
                # The bridge ends the session as a server's refusal ends one of its own (one notice;
                # the login marked refused). An open waiting for this is answered with it as well.
                self._hooks.publish(self.spec.conn, refused_event(str(refused)))
                return
            except (OSError, RegistrationFailed) as error:
                log.info("%s: connecting failed (%s); again in %.0f s", self.spec.conn, error, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, RECONNECT_MAX_S)
        if self.closed:
            return
        self._reconnecting = None  # (as _worker: nothing waits on it once it is here)
        log.info("%s: connected as %s", self.spec.conn, self.link.nick)
        for channel in self._channels:
            self.link.send(join(channel))
        try:
            for line in unsent:
                self.link.pass_on(line)
        except ConnectionError:
            return  # dropped again: the next reconnect takes them (take_unsent)
        self._up.set()

    # ---- hearing -----------------------------------------------------------------------------------

    def _heard(self, link: IrcLink, event: irc.client.Event) -> None:
        if event.type == "disconnect":
            self._up.clear()
            if not self.closed and (self._reconnecting is None or self._reconnecting.done()):
                log.info("%s: the server hung up; connecting again", self.spec.conn)
                self._reconnecting = asyncio.create_task(self._reconnect())
            return  # the bridge never sees the connection drop: it is the keeper's to mend
        if event.type in MEMBERSHIP_OF_OURS and self._ours(event):
            channels = [channel.name for channel in link.state.channels.values()]
            if channels != self._channels:
                self._channels = channels
                self._hooks.channels_changed(self.spec.conn, channels)
        if event.type not in NOISE and not self._others_in_channels(link, event):
            self._hooks.publish(self.spec.conn, event)

    def _others_in_channels(self, link: IrcLink, event: irc.client.Event) -> bool:
        if self.spec.members or event.type not in OTHERS_IN_CHANNELS:
            return False  # the listener's (the bot's) connection: the bridge reads all it hears
        if event.type in ("action", "ctcp", "ctcpreply"):
            return link.state.is_channel(str(event.target))  # one sent to us is a private message
        if event.type == "nick":  # ours: the state already took our new nick (the event's target)
            return link.state.fold(str(event.target)) != link.state.fold(link.nick)
        return event.type in ("pubmsg", "pubnotice") or not self._ours(event)

    def _ours(self, event: irc.client.Event) -> bool:
        if event.type == "kick" and event.arguments:
            return self.link.state.fold(str(event.arguments[0])) == self.link.state.fold(self.link.nick)
        return self.link.state.is_own(event.source)

    async def close(self, reason: str) -> None:
        self.closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        with contextlib.suppress(Exception):
            await self.link.close(reason)
        self.finished.set()


__all__ = ["HeldConnection", "KeeperHooks", "Outcome"]
