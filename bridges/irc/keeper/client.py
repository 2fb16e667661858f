"""The bridge's side of one network's keeper: commands out, answers and heard events in.

- Commands are appended to the keeper's command stream by one writer, in the order they were
  given (a line's order on IRC is its order here); each that wants an answer has a request ID,
  and the answer (on the network's results stream) settles its future.
- Heard events are read from the network's inbound stream through the consumer group
  :data:`~bridges.irc.keeper.protocol.BRIDGE_GROUP`, in order: after a crash the entries taken
  but never acknowledged come first. Each is handled (the connector stores what it makes of it:
  ``ctx.emit`` returns once the event is stored), then the entry's ID is recorded in the bridge's
  database, then acknowledged: an entry handled but not acknowledged before a crash is skipped
  by its ID, and its message ID (the IRC ``msgid``, else one made from the entry ID) makes the
  core's emit of it harmless anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import irc.client
from redis.asyncio import Redis

from bridges.irc.keeper import protocol as p
from bridges.irc.keeper import streams
from bridges.irc.link import RegistrationFailed

if TYPE_CHECKING:
    from bridges.irc.keeper.sharing import Placement

log = logging.getLogger(__name__)

Handler = Callable[[str, irc.client.Event], Awaitable[None]]
"""(connection ID, event) -> done once what the event means is stored."""

Cursor = tuple[Callable[[], Awaitable[str | None]], Callable[[str], Awaitable[None]]]
"""Read and write the last inbound entry handled (kept in the bridge's database)."""

BATCH = 100

REPEATABLE = frozenset({
    "pubmsg", "privmsg", "pubnotice", "privnotice", "action", "tagmsg",  # keyed by msgid: posted once
    "join", "namreply", "endofnames", "whoreply", "endofwho", "whospcrpl",  # membership as it is
    "welcome", "yourhost", "created", "myinfo", "featurelist", "cap", "batch", "ping", "pong",  # registration
    "motdstart", "motd", "endofmotd", "luserclient", "luserop", "luserunknown", "luserchannels", "luserme",
    "n_local", "n_global",
})
"""Inbound event types whose handling, done twice, shows nothing twice: a message's ID is the
entry's, and the core posts a message ID once; a JOIN or NAMES states who is there; what a server
says at registration sets state. After these the cursor is written once per batch (a crash
handles at most a batch of them again); after any other (PART, QUIT, NICK, KICK, MODE, TOPIC, a
refusal, a keeper's gap) at once. A keeper restart leaves about 9 entries per connection to
read, nearly all of these: one commit each made reading them the bridge's bottleneck."""
BLOCK_MS = 1000


class KeeperMismatch(RegistrationFailed):
    """The keeper speaks another protocol version: the message says which side to upgrade."""


class KeeperClient:
    def __init__(self, redis: Redis, network: str, keeper_id: str, *, placement: Placement | None = None) -> None:
        """``keeper_id``: a lone keeper's, or a group's scope (``sharing.group_scope``), whose keepers
        find a new connection placed on one of them (``placement``) before its ``open`` is appended."""
        self.redis = redis
        self._placement = placement
        self.network = network
        self.keeper_id = keeper_id
        self._commands = p.commands_stream(keeper_id)
        self._waiting: dict[str, asyncio.Future[p.Result]] = {}
        self._outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._results_from = "0-0"
        self._stopped = False
        self.paired = True
        """Connections may be opened. A ``KeptNetwork`` clears it until it has checked versions
        and adopted the keeper's connections (until then an open's command would wait in a queue
        nobody sends, and open a connection the bridge has given up on once Redis is back)."""

    async def start(self) -> None:
        """Raises a ``redis`` connection error while Redis is out of reach (nothing started yet:
        call it again)."""
        await self.check_version()
        self._results_from = await streams.newest_id(self.redis, p.results_stream(self.network))
        await streams.ensure_group(self.redis, p.inbound_stream(self.network), p.BRIDGE_GROUP)
        self._tasks += [asyncio.create_task(self._writer()), asyncio.create_task(self._results())]

    async def check_version(self) -> None:
        """Raises :class:`KeeperMismatch` when the keeper announced another protocol version.
        No announcement yet (the keeper not started): commands wait in Redis for it."""
        hello = await self.redis.get(p.hello_key(self.keeper_id))
        if hello is None:
            log.warning("%s: no IRC keeper %r has announced itself in Redis yet; its commands wait for it",
                        self.network, self.keeper_id)
            return
        problem = p.version_problem(json.loads(str(hello)).get("protocol"), we_are="bridge")
        if problem is not None:
            raise KeeperMismatch(f"{self.network}: {problem}")

    async def stop(self) -> None:
        self._stopped = True  # a cancel that reaches a blocking read may be swallowed by redis-py
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=BLOCK_MS / 1000 * 2)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    # ---- commands ------------------------------------------------------------------------------

    def command(self, op: p.Op, conn: str, data: dict[str, Any], *, answer: bool = True) -> asyncio.Future[p.Result]:
        """Queue a command (sent in order); its future is the keeper's answer (None-free: a
        future that never completes when ``answer`` is false)."""
        req = secrets.token_hex(8) if answer else ""
        future: asyncio.Future[p.Result] = asyncio.get_running_loop().create_future()
        if answer:
            self._waiting[req] = future
        self._outbox.put_nowait(p.Command(op, conn, req, data).encode())
        return future

    async def _writer(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < BATCH:
                batch.append(self._outbox.get_nowait())
            await streams.until_done(f"{self.network}: sending commands", partial(self._write, batch),
                                     lambda: self._stopped)

    async def _write(self, batch: list[dict[str, str]]) -> None:
        if self._placement is not None:
            for fields in batch:
                if fields["op"] == "open":
                    await self._placement.place(fields["conn"])
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in batch:
                pipe.xadd(self._commands, fields, maxlen=p.STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()

    async def _results(self) -> None:
        stream = p.results_stream(self.network)
        while not self._stopped:
            try:
                entries = await streams.read(self.redis, stream, self._results_from, count=BATCH, block_ms=BLOCK_MS)
            except streams.TRANSIENT as error:
                log.warning("%s: reading the keeper's answers: %s", self.network, error)
                await asyncio.sleep(streams.RETRY_S)
                continue
            for entry, fields in entries:
                self._results_from = entry
                result = p.Result.decode(fields)
                future = self._waiting.pop(result.req, None)
                if future is not None and not future.done():
                    future.set_result(result)

    # ---- heard events --------------------------------------------------------------------------

    async def listen(self, handler: Handler, cursor: Cursor) -> None:
        """Handle the inbound stream for ever (the caller runs this as a task)."""
        stream, position = p.inbound_stream(self.network), "0"
        read_last, write_last = cursor
        last = await read_last()
        while not self._stopped:
            try:
                entries = await streams.read_group(self.redis, p.BRIDGE_GROUP, "bridge", stream, position,
                                                   count=BATCH, block_ms=None if position == "0" else BLOCK_MS)
            except streams.TRANSIENT as error:
                log.warning("%s: reading what IRC said: %s", self.network, error)
                await asyncio.sleep(streams.RETRY_S)
                position = "0"  # what was taken and not acknowledged comes again (the cursor skips what is done)
                continue
            if position == "0" and not entries:
                position = ">"  # caught up with what an earlier run took but never acknowledged
                continue
            unwritten: str | None = None
            for entry, fields in entries:
                if p.stream_id_after(entry, last):
                    await self._handle(entry, fields, handler)
                    last = entry
                    if fields.get("type") in REPEATABLE:
                        unwritten = entry
                    else:
                        await write_last(entry)
                        unwritten = None
            if unwritten is not None:
                await write_last(unwritten)
            if entries:  # one acknowledgement per batch: what a crash leaves unacknowledged, the cursor skips
                await streams.until_done(f"{self.network}: acknowledging",
                                         _ack(self.redis, stream, [entry for entry, _fields in entries]),
                                         lambda: self._stopped)

    async def _handle(self, entry: str, fields: dict[str, str], handler: Handler) -> None:
        try:
            conn, event = p.decode_event(fields)
        except (KeyError, ValueError) as error:
            log.warning("%s: skipping a malformed inbound entry %s: %s", self.network, entry, error)
            return
        if p.tag_of(event, "msgid") is None:
            # A message ID that is the same when the entry is handled again (after a crash).
            event.tags = [*(event.tags or []), {"key": "msgid", "value": f"kept-{entry}"}]
        try:
            await handler(conn, event)
        except Exception:
            log.exception("%s: handling IRC %s from the keeper failed", self.network, event.type)


def _ack(redis: Redis, stream: str, entries: list[str]) -> Callable[[], Awaitable[None]]:
    async def ack() -> None:
        await redis.xack(stream, p.BRIDGE_GROUP, *entries)

    return ack


__all__ = ["KeeperClient", "KeeperMismatch"]
