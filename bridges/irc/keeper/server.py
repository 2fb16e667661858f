"""The connection keeper: holds IRC connections for bridges and talks to them through Redis.

It announces itself (protocol version) under :func:`~bridges.irc.keeper.protocol.hello_key`,
reads its command stream through a consumer group (entries it had taken but not finished before
a crash come back first, in order), runs each connection's commands in order
(:class:`~bridges.irc.keeper.held.HeldConnection`), and appends what the connections hear to
their network's inbound stream, in the order heard. A command is acknowledged only once done: a
``send`` once its line is settled, so a keeper killed meanwhile sends it again when it returns
(at most the line in flight repeated). What it needs to make its connections again after its
own restart (their specs, secrets sealed, and channels) is kept in Redis too.

It records a heartbeat every :data:`HEARTBEAT_S` (and at a clean stop). After a restart, the gap
since the last one is told to each network it served once that network's bot connection is up
again (a ``keeper-gap`` entry on the inbound stream): whatever its length, for a keeper restart
always drops the connections, and what IRC said meanwhile was heard by nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from functools import partial
from typing import Any, cast

import irc.client
from redis.asyncio import Redis

from bridgekit import CredentialCipher
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper import streams
from bridges.irc.keeper.held import HeldConnection, Outcome
from bridges.irc.keeper.ring import Unfinished
from bridges.irc.keeper.sealing import unseal
from bridges.irc.keeper.shared_keeper import do_ours, group_duties, rejoin
from bridges.irc.keeper.sharing import Membership, group_scope, keeper_group, resume_key
from bridges.irc.link import AccountRefused
from bridges.irc.outgoing import TokenBucket

log = logging.getLogger(__name__)

BATCH = 200
BLOCK_MS = 1000
HEARTBEAT_S = 10.0
"""How often the keeper records that it is alive: the error of the reported start of its gap."""


class Keeper:
    def __init__(self, redis: Redis, keeper_id: str, *, cipher: CredentialCipher | None = None,
                 connects_per_second: float = 5.0, protocol_version: int = p.PROTOCOL_VERSION,
                 group: str | None = None, lease_seconds: float = 15.0) -> None:
        self.redis = redis
        self.keeper_id = keeper_id
        self.membership = Membership(redis, group, keeper_id, lease_seconds) if group else None
        """In a group (docs/irc.md, "Several keepers"): the lease, and which connections are ours."""
        self.scope = group_scope(group) if group else keeper_id
        """Whose command stream and stored specs: the group's, or this lone keeper's."""
        self.consumer_group = keeper_group(keeper_id) if group else p.KEEPER_GROUP
        self._unfinished = Unfinished()
        self._beat_every = min(HEARTBEAT_S, lease_seconds / 3) if group else HEARTBEAT_S
        self._cipher = cipher
        self._version = protocol_version
        self.held: dict[str, HeldConnection] = {}
        self._connects = TokenBucket(connects_per_second, max(1, int(connects_per_second)), time.monotonic())
        self._heard: asyncio.Queue[tuple[str, irc.client.Event, float]] = asyncio.Queue()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()
        self._channel_saves: asyncio.Queue[tuple[str, list[str]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.commands_stream = p.commands_stream(self.scope)
        self._stopped = False
        self._joined = False
        self.lapsed = False
        """Our lease expired while we ran (Redis out of reach, a stall): some connections may be
        another keeper's now."""
        self.position = "0-0"
        """The last command entry read (a group member's: what is after it, it reads anyway)."""
        self.next_scan = 0.0
        self._forgetting: set[asyncio.Task[None]] = set()

    # ---- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.announce()
        went_down = await self.redis.get(p.heartbeat_key(self.keeper_id))  # before the first beat
        # A group member's reading starts now: what came before, it does again from each of its
        # connections' resume points (``sharing``), not from its consumer group's history.
        start = "$" if self.membership is not None else "0"
        await streams.ensure_group(self.redis, self.commands_stream, self.consumer_group, start=start)
        if self.membership is not None:
            await self.membership.renew()  # before reading what is ours: nobody takes it meanwhile
            self._joined = True
        loops = (self._publisher, self._answerer, self._channel_saver, self._heartbeat)
        self._tasks = [asyncio.create_task(loop()) for loop in loops]
        if self.membership is not None:
            await rejoin(self, _seconds(went_down))
        else:
            await self._restore(_seconds(went_down))
        await self._read_commands()

    async def announce(self) -> None:
        hello = {"protocol": self._version, "keeper": self.keeper_id, "pid": os.getpid(), "started": time.time()}
        await self.redis.set(p.hello_key(self.keeper_id), json.dumps(hello))
        if self.scope != self.keeper_id:  # the bridge checks the version under the group's name
            await self.redis.set(p.hello_key(self.scope), json.dumps(hello))

    async def stop(self, *, hang_up: bool = False) -> None:
        """Stop reading; the connections stay as they are until the process exits (a keeper is
        stopped to be replaced: its connections are made again by the next one), or, with
        ``hang_up``, are closed now (a keeper inside another process: tests)."""
        if hang_up or self.membership is not None:  # (a group's take over at once: none left twice on IRC)
            for held in self.held.values():
                await held.close("")
        self._stopped = True  # a cancel that reaches a blocking read may be swallowed by redis-py
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(*streams.TRANSIENT):
            await self._beat()  # the gap the next start tells begins now
            if self.membership is not None:  # our connections close with us: the others take them at once
                await self.membership.leave()

    async def _restore(self, went_down: float | None) -> None:
        """After a restart: make the connections the keeper held again, paced (``connect_turn``).
        ``went_down``: the last heartbeat of the previous run (None: the first run), remembered
        for each network whose bot connection is made again until that network is told."""
        specs = await streams.hash_all(self.redis, p.connections_key(self.scope))
        for text in specs.values():
            await self.hold_again(p.ConnectionSpec.from_json(text), went_down)
        if specs:
            log.info("making %d connection(s) again", len(specs))

    async def hold_again(self, spec: p.ConnectionSpec, went_down: float | None) -> None:
        """Make a connection again from its stored spec and channels (paced: ``connect_turn``);
        its network told the gap from ``went_down`` once a bot's is up."""
        if went_down is not None and p.connection_owner(spec.conn)[0] == "bot":
            # (kept if already there: a gap not yet told, the keeper died again meanwhile)
            await cast(Any, self.redis.hsetnx(p.gaps_key(self.keeper_id), spec.network, repr(went_down)))
        channels = await streams.set_members(self.redis, p.channels_key(self.scope, spec.conn))
        held = self._hold(spec, channels)
        asyncio.create_task(self._up_again(held))  # noqa: RUF006 (the connection keeps it: held.link)

    async def _up_again(self, held: HeldConnection) -> None:
        try:
            await held.ensure_up()
        except AccountRefused:
            await self._forget(held)  # the password changed meanwhile: the user logs in again
            return
        if p.connection_owner(held.spec.conn)[0] == "bot":
            await streams.until_done("telling the gap", partial(self._tell_gap, held.spec.network))

    async def _tell_gap(self, network: str) -> None:
        """The network's bot listens again: the bridge is told what nobody heard (once the entry
        is appended the gap is forgotten; a crash between the two tells it twice, and the bridge
        posts it once: its notice's ID is made of the keeper and when the gap began)."""
        began = await cast(Any, self.redis.hget(p.gaps_key(self.keeper_id), network))
        if began is None:
            return
        now = time.time()
        entry = p.encode_event(p.gap_connection(network), p.gap_event(self.keeper_id, float(began), now), now)
        await self.redis.xadd(p.inbound_stream(network), entry,  # type: ignore[arg-type]
                              maxlen=p.STREAM_MAXLEN, approximate=True)
        await cast(Any, self.redis.hdel(p.gaps_key(self.keeper_id), network))
        log.warning("%s: told the bridge this keeper was offline for %.0f s", network, now - float(began))

    async def _forget(self, held: HeldConnection) -> None:
        """A refused account's connection is not made again (after a restart either)."""
        conn = held.spec.conn
        if self.held.get(conn) is held:
            del self.held[conn]
            await streams.hash_delete(self.redis, p.connections_key(self.scope), conn)
            await self.redis.delete(p.channels_key(self.scope, conn))

    async def _read_commands(self) -> None:
        # First what was taken but never finished (a crash), then new entries; a group member
        # has done its unfinished ones again already (``rejoin``).
        position = "0" if self.membership is None else ">"
        while not self._stopped:
            try:
                entries = await streams.read_group(
                    self.redis, self.consumer_group, self.keeper_id, self.commands_stream, position, count=BATCH,
                    block_ms=None if position == "0" else BLOCK_MS,
                )
                if self.membership is not None:
                    await do_ours(self, entries)
                    await group_duties(self)
                    continue
            except streams.TRANSIENT as error:
                log.warning("reading commands: %s", error)
                await asyncio.sleep(streams.RETRY_S)
                continue
            if position == "0" and not entries:
                position = ">"
                continue
            for entry, fields in entries:
                await self.command(entry, fields)

    async def command(self, entry: str, fields: dict[str, str]) -> None:
        try:
            command = p.Command.decode(fields)
        except (ValueError, KeyError) as error:
            log.warning("dropping a malformed command %s: %s", entry, error)
            await self.redis.xack(self.commands_stream, self.consumer_group, entry)
            return
        problem = p.version_problem(command.version, we_are="keeper", ours=self._version)
        if problem is not None:
            log.error("refusing a command from the bridge: %s", problem)
            self.outcome(Outcome(entry, command, False, problem))
            return
        if command.op == "list" and self.membership is not None and command.data.get("keeper") != self.keeper_id:
            await self.redis.xack(self.commands_stream, self.consumer_group, entry)  # another group member's to answer
            return
        if command.op == "list":
            network = str(command.data.get("network", ""))
            self.outcome(Outcome(entry, command, True, data=p.list_answer(
                (conn, held.link.state, held.spec) for conn, held in self.held.items()
                if held.spec.network == network and held.link.connected)))
            return
        held = self.held.get(command.conn)
        if command.op == "open":
            spec = p.ConnectionSpec.from_json(str(command.data["spec"]))
            await streams.hash_set(self.redis, p.connections_key(self.scope), spec.conn, spec.to_json())
            if held is None or held.closing:  # (a refused account's is closing: a new password)
                held = self._hold(spec, [], after=held)
        elif held is None:
            self.outcome(Outcome(entry, command, False, f"no connection {command.conn} on this keeper"))
            return
        elif command.op == "close":
            held.closing = True
            await streams.hash_delete(self.redis, p.connections_key(self.scope), command.conn)
            await self.redis.delete(p.channels_key(self.scope, command.conn))
        self._unfinished.started(command.conn, entry)
        held.submit(entry, command)

    def _hold(self, spec: p.ConnectionSpec, channels: list[str], after: HeldConnection | None = None) -> HeldConnection:
        password, account = unseal(self._cipher, spec.conn, spec.sealed)
        held = HeldConnection(spec, self, password=password, account=account, channels=channels, after=after)
        self.held[spec.conn] = held
        return held

    # ---- KeeperHooks ----------------------------------------------------------------------------

    def publish(self, conn: str, event: irc.client.Event) -> None:
        self._heard.put_nowait((conn, event, time.time()))

    def outcome(self, outcome: Outcome) -> None:
        self._outcomes.put_nowait(outcome)
        held = self.held.get(outcome.command.conn)
        if outcome.command.op == "open" and held is not None and held.refused is not None:
            forgetting = asyncio.create_task(self._forget(held))
            self._forgetting.add(forgetting)  # (a task nobody holds may be collected before it ran)
            forgetting.add_done_callback(self._forgetting.discard)

    def channels_changed(self, conn: str, channels: list[str]) -> None:
        self._channel_saves.put_nowait((conn, channels))

    async def already_sent(self, network: str, key: str) -> bool:
        return bool(await self.redis.exists(p.done_key(network, key)))

    async def connect_turn(self) -> None:
        """Connections are made at most ``connects_per_second`` (a restart is not a flood)."""
        while True:
            if self._connects.take(time.monotonic()):
                return
            await asyncio.sleep(self._connects.wait())

    # ---- writers (one each: Redis sees what was heard, and answers, in order) -----------------------

    async def _publisher(self) -> None:
        while True:
            batch = [await self._heard.get()]
            while not self._heard.empty() and len(batch) < BATCH:
                batch.append(self._heard.get_nowait())
            entries = [(p.inbound_stream(conn.partition("/")[0]), p.encode_event(conn, event, received))
                       for conn, event, received in batch]
            await streams.until_done("publishing what IRC said", partial(self._append, entries))

    async def _append(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, fields in entries:
                pipe.xadd(stream, fields, maxlen=p.STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()

    async def _answerer(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < BATCH:
                batch.append(self._outcomes.get_nowait())
            await streams.until_done("answering the bridge", partial(self._answer_all, batch))

    async def _answer_all(self, batch: list[Outcome]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for done in batch:
                self._answer(pipe, done)
            await pipe.execute()

    def _answer(self, pipe: Any, done: Outcome) -> None:
        command = done.command
        network = command.conn.partition("/")[0] or str(command.data.get("network", ""))
        key = command.data.get("key") if command.op == "send" else None
        if done.ok and key is not None:
            pipe.set(p.done_key(network, str(key)), "1", ex=p.DONE_KEY_TTL_S)
        if command.req:
            result = p.Result(command.req, done.ok, done.error, done.data or {})
            pipe.xadd(p.results_stream(network), result.encode(), maxlen=p.STREAM_MAXLEN, approximate=True)
        resume = self._unfinished.finished(command.conn, done.entry)
        if resume is not None and self.membership is not None:  # where a new owner would start again
            pipe.hset(resume_key(self.membership.group), command.conn, resume)
        pipe.xack(self.commands_stream, self.consumer_group, done.entry)

    async def _heartbeat(self) -> None:
        while True:
            await streams.until_done("recording the heartbeat", self._beat)
            await asyncio.sleep(self._beat_every)

    async def _beat(self) -> None:
        await self.redis.set(p.heartbeat_key(self.keeper_id), repr(time.time()))
        if self.membership is not None and self._joined and not self._stopped and not await self.membership.renew():
            self.lapsed = True  # the reader gives up what the group took meanwhile (``group_duties``)

    async def _channel_saver(self) -> None:
        while True:
            conn, channels = await self._channel_saves.get()
            await streams.until_done("keeping channels", partial(self._save_channels, conn, channels))

    async def _save_channels(self, conn: str, channels: list[str]) -> None:
        key = p.channels_key(self.scope, conn)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if channels:
                pipe.sadd(key, *channels)
            await pipe.execute()


def _seconds(stored: object) -> float | None:
    """A stored heartbeat (None: the first run; junk in Redis is no gap either)."""
    try:
        return float(str(stored)) if stored is not None else None
    except ValueError:
        return None


__all__ = ["Keeper"]
