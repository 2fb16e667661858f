"""IRC benchmark: bridgekit's IRC bridge next to heisenbridge, on one Synapse and one InspIRCd.

    .venv/bin/python bench/irc.py [--quick] [--json [PATH]] [--no-heisenbridge] [--vu N]

One run starts Synapse once (three appservice registrations: bridgekit ``@_bk_.*``, heisenbridge
``@irc_.*`` and a null appservice ``@_null_.*`` of the benchmark's own that records when Synapse
hands each event over), InspIRCd (flood limits off) and then measures each bridge in turn:

1. Matrix -> IRC burst: N sequential PUTs from one Matrix user; every line must reach a plain IRC
   client in the channel, in order. IRC lines/s next to the rate Synapse handed the events to the
   null appservice, and the delay from the last hand-off to the last line on the wire.
2. Matrix -> IRC paced 5/s: PUT -> line at the IRC client (p50/p99), split into Synapse's own
   hand-off (PUT -> null appservice) and the bridge's share (hand-off -> line).
   Scenarios 1 and 2 run with each bridge's defaults (the row people meet: bridgekit's shipped
   pacing, heisenbridge's built-in throttle) and with pacing off where the bridge allows it
   (capacity; bridgekit only, heisenbridge has no setting): see ``bench/irc_settings.py``.
3. IRC -> Matrix paced 5/s: PRIVMSG -> event in the Matrix client's /sync (p50/p95), next to
   Synapse's PUT -> /sync floor (one user sends, another syncs) in the same run.
4. IRC -> Matrix burst of N lines: all arrive, in order, each its own event (lines inside
   heisenbridge's merged events are counted as lines), rate vs Synapse's one-sender rate.
5. Capacity without Synapse (bridgekit only): synthetic transactions straight into the bridge's
   ``/_matrix/app/v1/transactions``, IRC lines/s out with pacing off.
6. RSS: each bridge idle after set-up; bridgekit with N virtual-user connections on ngIRCd.

Every scenario that can repeat runs in rounds (5, ``--quick`` 3) and shows the median with the
range; the defaults rows of scenarios 1 and 2 run once, capped in time (a throttled backlog takes
minutes to drain). heisenbridge throttles its own IRC output and merges IRC lines arriving within
0.1 s into one event: its IRC -> Matrix latency includes that window. Everything binds 127.0.0.1; every process is
stopped by PID in ``finally``; temporary files live under ``.bench/irc-*`` and are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on sys.path, and this file (irc.py) would then shadow
# the `irc` package the IRC client and the bridge import. The benchmark imports from the repository.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench import bridge_trace, wire  # noqa: E402
from bench.contenders import SETTLE_MAX_S, wait_quiet  # noqa: E402
from bench.irc_peer import (  # noqa: E402
    AsUsers,
    Heisenbridge,
    NullAppservice,
    PeerUnavailable,
    ensure_heisenbridge,
    heisenbridge_version,
    invite_as,
    rss_bytes,
)
from bench.irc_settings import (  # noqa: E402
    CAPACITY,
    DEFAULTS,
    HEISENBRIDGE_MERGE_WINDOW_S,
    MANY_USERS,
    Pacing,
    bridgekit_section,
)
from bridgekit.demo.irc_client import IrcTestClient, IrcWaitTimeout, Line  # noqa: E402
from bridgekit.demo.matrix_client import MatrixTestClient  # noqa: E402
from bridgekit.testing.bridge_process import BridgeProcess  # noqa: E402
from bridgekit.testing.synapse import AppserviceSlot, SynapseServer  # noqa: E402
from tests.servers.ircd import InspIRCd, NgIRCd  # noqa: E402

Event = dict[str, Any]
Result = dict[str, Any]

BK = "bridgekit"
HB = "heisenbridge"
SYN = "Synapse"
SYN_AS = "Synapse, appservice sender"
SYN_BARE = "Synapse, no m.mentions"

GOAL_M2I_RATIO = 0.95
GOAL_M2I_TAIL_MS = 50.0
GOAL_ADDED_P50_MS = 5.0
GOAL_ADDED_P99_MS = 25.0
GOAL_I2M_P50_MS = 80.0
GOAL_I2M_RATIO = 0.9
GOAL_CAPACITY = 1000.0
GOAL_IDLE_RSS_MB = 100.0
GOAL_VU_RSS_MB = 100.0

FILLER = "the quick brown fox jumps over the lazy dog"
# What the Synapse rows send: the content the bridge sends for these lines, and what current
# Matrix clients send. ``m.mentions`` (spec v1.7) costs Synapse a few ms per event (it checks the
# object against a JSON schema), so a body-only floor would measure that content difference rather
# than the bridge; the body-only row is printed beside it for reference.
MENTIONS_NOBODY: dict[str, Any] = {"m.mentions": {}}


def now() -> float:
    return time.monotonic()


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest rank; a missing sample is ``inf`` (it never arrived), so it counts as the slowest."""
    if not samples:
        return math.inf
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return seconds * 1000 if math.isfinite(seconds) else math.inf


async def sleep_until(moment: float) -> None:
    delay = moment - now()
    if delay > 0:
        await asyncio.sleep(delay)


def seq_of(text: str, tag: str) -> int | None:
    parts = text.split(" ", 2)
    if len(parts) >= 2 and parts[0] == tag and parts[1].isdigit():
        return int(parts[1])
    return None


def in_order(numbers: list[int]) -> bool:
    return numbers == sorted(set(numbers))


# ---- watching both sides ------------------------------------------------------------------------


def said(channel: str, tag: str) -> Callable[[Line], bool]:
    folded = channel.casefold()
    return lambda line: (line.command == "PRIVMSG" and (line.target or "").casefold() == folded
                         and line.text.startswith(f"{tag} "))


async def irc_lines(client: IrcTestClient, predicate: Callable[[Line], bool], n: int, deadline: float,
                    since: int) -> list[Line]:
    """The first ``n`` matching lines, or as many as arrived by ``deadline`` (monotonic)."""
    with contextlib.suppress(IrcWaitTimeout):
        return await client.wait_for_count(predicate, n, max(0.0, deadline - now()), since=since)
    return client.lines(predicate, since=since)


class TimelineWatch:
    """Long-polls /sync for one client in a task; stamps each new event of the room when it arrived."""

    def __init__(self, client: MatrixTestClient, room_id: str) -> None:
        self.client = client
        self.room_id = room_id
        self.entries: list[tuple[float, Event]] = []
        self._index = len(client.events(room_id))
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def __aenter__(self) -> TimelineWatch:
        self._task = asyncio.create_task(self._loop())
        await asyncio.sleep(0.05)  # the first long-poll is on its way before anything is sent
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        try:
            while True:
                await self.client.sync_once(timeout_ms=2000)
                stamp = now()
                events = self.client.events(self.room_id)
                self.entries.extend((stamp, event) for event in events[self._index:])
                self._index = len(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by the waiters
            self.error = exc

    def lines(self, tag: str) -> tuple[list[tuple[float, int]], int]:
        """(seen time, sequence number) of every tagged line, in timeline order; and how many events held them."""
        found: list[tuple[float, int]] = []
        events = 0
        for stamp, event in self.entries:
            if event.get("type") != "m.room.message" or event.get("sender") == self.client.user_id:
                continue
            body = event.get("content", {}).get("body", "")
            numbers = [seq for part in str(body).split("\n") if (seq := seq_of(part, tag)) is not None]
            if numbers:
                events += 1
                found.extend((stamp, seq) for seq in numbers)
        return found, events

    async def wait_lines(self, tag: str, n: int, deadline: float) -> tuple[list[tuple[float, int]], int]:
        while True:
            found, events = self.lines(tag)
            if len(found) >= n or now() >= deadline or self.error is not None:
                return found, events
            await asyncio.sleep(0.01)


# ---- the run's servers and the bridges under test -----------------------------------------------


@dataclass
class Side:
    """One bridge, set up: a Matrix user in the channel's room, the IRC channel, the process."""

    name: str
    sender: MatrixTestClient
    reader: MatrixTestClient
    room_id: str
    channel: str
    pid: int
    idle_rss: int = 0
    notes: list[str] = field(default_factory=list)
    trace: Path | None = None
    """The bridge's own stamps (``BRIDGEKIT_BENCH_TRACE``; bridgekit only)."""


@dataclass
class Plan:
    burst: int
    paced: int
    rate: float
    capacity: int
    vu: int
    hb_burst_cap_s: float
    hb_paced_grace_s: float
    i2m_rounds: int
    rounds: int
    budget_s: float


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        quick = bool(args.quick)
        self.plan = Plan(
            burst=100 if quick else 300, paced=25 if quick else 50, rate=5.0, capacity=2000 if quick else 20_000,
            vu=args.vu if args.vu is not None else (100 if quick else 1000),
            hb_burst_cap_s=15.0 if quick else 30.0, hb_paced_grace_s=5.0 if quick else 10.0,
            i2m_rounds=3 if quick else 5, rounds=3 if quick else 5,
            budget_s=300.0 if quick else 1200.0,
        )
        self.started = now()
        scratch = _REPO / ".bench"
        scratch.mkdir(exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="irc-", dir=scratch))
        self.synapse = SynapseServer(self.work / "synapse", log_level=args.synapse_log)
        self.inspircd = InspIRCd(self.work / "inspircd")
        self.trace_path = self.work / "bridgekit-trace.jsonl"
        self.null: NullAppservice | None = None
        self.slot: AppserviceSlot | None = None
        self.hb: Heisenbridge | None = None
        self.hb_problem: str | None = None
        self.hb_version = ""
        self.results: Result = {"scenarios": {}, "notes": []}
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self.clients: list[MatrixTestClient] = []
        self.irc_clients: list[IrcTestClient] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def remaining(self) -> float:
        return self.plan.budget_s - (now() - self.started)

    def note(self, text: str) -> None:
        log(f"note: {text}")
        self.results["notes"].append(text)

    def scenario(self, key: str) -> Result:
        out: Result = self.results["scenarios"].setdefault(key, {})
        return out

    async def start_servers(self) -> None:
        if not self.args.no_heisenbridge:
            try:
                python = await asyncio.to_thread(ensure_heisenbridge, log)
                self.hb_version = await asyncio.to_thread(heisenbridge_version, python)
                self.hb = Heisenbridge(python, self.work / "heisenbridge")
                await asyncio.to_thread(self.hb.generate)
            except (PeerUnavailable, OSError, RuntimeError) as exc:
                self.hb_problem = str(exc)
                self.note(f"heisenbridge unavailable: {exc}")
                self.hb = None
        self.synapse.write_config()
        self.slot = AppserviceSlot("bench", appservice_id=f"bench-irc-{secrets.token_hex(3)}", prefix="_bk_",
                                   homeserver_url=self.synapse.url, server_name=self.synapse.server_name,
                                   connector="irc")
        self.null = NullAppservice(self.synapse.server_name)
        registrations = [self.slot.write_registration(self.work / "bridgekit-registration.yaml"),
                         self.null.write_registration(self.work / "null-registration.yaml")]
        if self.hb is not None:
            registrations.append(self.hb.registration_path)
        self.synapse.appservice_registrations = registrations
        self.null.start()
        log("starting Synapse and InspIRCd")
        await asyncio.to_thread(self.synapse.start)
        await asyncio.to_thread(self.inspircd.start)

    async def stop_all(self) -> None:
        for cleanup in reversed(self._cleanups):
            try:
                await cleanup()
            except Exception as exc:
                log(f"cleanup failed: {exc!r}")
        for irc in self.irc_clients:
            with contextlib.suppress(Exception):
                await irc.close()
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.inspircd.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.synapse.stop)
        if self.null is not None:
            self.null.stop()
        if self.slot is not None:
            self.slot.release()
        if self.hb is not None:
            await self.hb.stop()
        if self.args.keep:
            log(f"scratch kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    async def user(self, name: str) -> MatrixTestClient:
        client = await MatrixTestClient.create_user(self.synapse, f"{name}_{secrets.token_hex(3)}")
        self.clients.append(client)
        return client

    def twin(self, client: MatrixTestClient) -> MatrixTestClient:
        """The same user with its own sync position (a reader that never competes with the sender)."""
        reader = MatrixTestClient(client.homeserver_url, client.access_token, client.user_id, timeline_limit=100)
        self.clients.append(reader)
        return reader

    async def irc(self, nick: str, port: int | None = None) -> IrcTestClient:
        client = await IrcTestClient.connect("127.0.0.1", port or self.inspircd.port, nick, timeout=60)
        self.irc_clients.append(client)
        return client

    async def join_null_bot(self, room_id: str) -> None:
        assert self.null is not None
        users = AsUsers(self.synapse.url, self.null)
        try:
            await users.register(f"{self.null.localpart_prefix}bot")
            await users.join(self.null.bot_user_id, room_id)
        finally:
            await users.aclose()

    async def settle(self, *pids: int | None) -> None:
        """Wait (at most 15 s) until Synapse, InspIRCd and the given bridge processes are quiet.

        Work that one scenario leaves behind (Synapse persisting, pushing to appservices and
        answering syncs; a bridge writing behind) must not land on the next scenario's clock.
        """
        watched = [pid for pid in (self.synapse.pid, self.inspircd.pid, *pids) if pid is not None]
        if not await wait_quiet(watched):
            self.note(f"servers still busy after {SETTLE_MAX_S:g} s; measuring anyway")

    async def leave_null_bot(self, room_id: str) -> None:
        """The null appservice only times Matrix -> IRC hand-offs. While IRC -> Matrix is measured it
        is not in the room: Synapse would push every bridged event to it too, work that no deployed
        bridge's room carries and the Synapse rows do not pay for."""
        assert self.null is not None
        users = AsUsers(self.synapse.url, self.null)
        try:
            await users.leave(self.null.bot_user_id, room_id)
        finally:
            await users.aclose()

    async def warm_up(self, side: Side, watcher: IrcTestClient, speaker: IrcTestClient) -> None:
        """First message each way: connections, ghosts and joins are made before any clock runs."""
        assert self.null is not None
        since = watcher.mark()
        event_id = await side.sender.send_text(side.room_id, "warmup 0000 from matrix")
        await watcher.wait_for(said(side.channel, "warmup"), 90, since=since)
        if not await self.null.wait_arrivals([event_id], now() + 10):
            self.note(f"{side.name}: the null appservice did not get the warm-up event; hand-off times missing")
        await side.reader.sync_once(0)
        await speaker.privmsg(side.channel, "warmup 0001 from irc")
        await side.reader.wait_for_event(
            side.room_id, lambda e: "warmup 0001" in str(e.get("content", {}).get("body", "")), timeout=90)
        await asyncio.sleep(2.0)
        side.idle_rss = rss_bytes(side.pid)

    # -- bridgekit -----------------------------------------------------------------------------------

    async def start_bridgekit(self, name: str, server_port: int, bot_nick: str,
                              pacing: Pacing = CAPACITY) -> BridgeProcess:
        slot = self.slot
        assert slot is not None
        section = bridgekit_section(pacing, server_port, bot_nick)
        config = slot.write_bridge_config(
            self.work / f"{name}.yaml", f"sqlite+aiosqlite:///{self.work / f'{name}.db'}",
            connectors={"irc": section}, permissions={self.synapse.server_name: "admin"},
            appservice={"public_url": slot.bridge_url}, logging={"level": "WARNING", "access_log": False},
        )
        # The bridge stamps each message's arrival and departure itself (bridgekit/bench_trace.py):
        # what it adds, measured at the bridge, is reported next to the end-to-end figures.
        bridge = BridgeProcess(config, env={"PYTHONPATH": str(_REPO), "BRIDGEKIT_BENCH_TRACE": str(self.trace_path)})

        async def stop() -> None:
            await bridge.stop()

        self._cleanups.append(stop)
        await bridge.start_ready(60)
        return bridge

    async def setup_bridgekit(self, watcher: IrcTestClient, speaker: IrcTestClient,
                              bot_nick: str) -> tuple[Side, BridgeProcess]:
        slot = self.slot
        assert slot is not None
        bridge = await self.start_bridgekit("bridgekit", self.inspircd.port, bot_nick)
        assert bridge.pid is not None
        channel = f"#bk{secrets.token_hex(3)}"
        await watcher.join(channel)
        await speaker.join(channel)
        alice = await self.user("alice")
        room_id = await alice.join(slot.alias(channel))
        await alice.wait_for_membership(room_id, alice.user_id)
        await self.join_null_bot(room_id)
        side = Side(BK, alice, self.twin(alice), room_id, channel, bridge.pid, trace=self.trace_path)
        await self.warm_up(side, watcher, speaker)
        return side, bridge

    # -- heisenbridge --------------------------------------------------------------------------------

    async def setup_heisenbridge(self, watcher: IrcTestClient, speaker: IrcTestClient) -> tuple[Side, str]:
        hb = self.hb
        assert hb is not None
        owner = await self.user("owner")
        hb.start(self.synapse.url, owner.user_id)

        async def stop() -> None:
            await hb.stop()

        self._cleanups.append(stop)
        bot = hb.bot_user_id(self.synapse.server_name)

        async def command(room: str, text: str, expect: str) -> None:
            def reply(e: Event) -> bool:
                return e.get("sender") == bot and expect in str(e.get("content", {}).get("body", ""))
            before = sum(1 for e in owner.events(room) if reply(e))
            await owner.send_text(room, text)
            await owner.wait_for_events(room, reply, before + 1, timeout=60)

        async def invited() -> str:
            room = await owner.wait_for_any_invite(timeout=90)
            hb.check_alive()
            await owner.join(room)
            return room

        control = await invited()
        await command(control, "ADDNETWORK bench", "Network added")
        await command(control, f"ADDSERVER bench 127.0.0.1 {self.inspircd.port}", "Server added")
        await owner.send_text(control, "OPEN bench")
        network = await invited()
        nick = f"hb{secrets.token_hex(3)}"
        await command(network, f"NICK {nick}", "Nickname set")
        await owner.send_text(network, "CONNECT")
        await wait_online(watcher, nick, 60)
        channel = f"#hb{secrets.token_hex(3)}"
        await watcher.join(channel)
        await speaker.join(channel)
        await owner.send_text(network, f"JOIN {channel}")
        room_id = await invited()
        # The owner may not invite in heisenbridge's rooms (invite needs power 100): the null
        # appservice's bot is invited by heisenbridge's own appservice user, with its token.
        assert self.null is not None
        await invite_as(self.synapse.url, hb.as_token, room_id, self.null.bot_user_id)
        await self.join_null_bot(room_id)
        assert hb.pid is not None
        side = Side(HB, owner, self.twin(owner), room_id, channel, hb.pid)
        await self.warm_up(side, watcher, speaker)
        return side, network

    async def reset_heisenbridge(self, side: Side, network: str, watcher: IrcTestClient, nick: str) -> None:
        """Drop heisenbridge's IRC connection (and with it its throttled output queue), reconnect."""
        since = watcher.mark()
        await side.sender.send_text(network, "DISCONNECT")
        await watcher.wait_for(lambda ln: ln.command == "QUIT" and ln.is_from(nick), 30, since=since)
        since = watcher.mark()
        await side.sender.send_text(network, "CONNECT")
        await watcher.wait_for(lambda ln: ln.command == "JOIN" and ln.is_from(nick)
                               and (ln.target or "").casefold() == side.channel.casefold(), 60, since=since)
        await asyncio.sleep(1.0)


async def wait_online(client: IrcTestClient, nick: str, timeout: float) -> None:  # noqa: ASYNC109
    end = now() + timeout
    while now() < end:
        since = client.mark()
        client.send_raw(f"ISON {nick}")
        answer = await client.wait_for(lambda ln: ln.command == "303", 10, since=since)
        if nick.casefold() in answer.text.casefold().split():
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{nick} not on IRC after {timeout} s")


# ---- scenarios ----------------------------------------------------------------------------------


async def m2i_burst(run: Run, side: Side, watcher: IrcTestClient, n: int, cap_s: float | None) -> Result:
    """1. N sequential PUTs; lines at the IRC client vs Synapse's hand-off to the null appservice."""
    assert run.null is not None
    tag = f"mb{secrets.token_hex(2)}"
    since = watcher.mark()
    ids: list[str] = []
    t0 = now()
    last_put = t0
    for i in range(n):
        if cap_s is not None and now() - t0 > cap_s:
            break
        ids.append(await side.sender.send_text(side.room_id, f"{tag} {i:04d} {FILLER}"))
        last_put = now()
    deadline = t0 + cap_s if cap_s is not None else now() + 120
    lines = await irc_lines(watcher, said(side.channel, tag), len(ids), deadline, since)
    handoffs = await run.null.wait_arrivals(ids, now() + 5)
    numbers = [seq for ln in lines if (seq := seq_of(ln.text, tag)) is not None]
    complete = len(lines) == n
    last_line = lines[-1].received_at if lines else math.inf
    elapsed_irc = (last_line - t0) if complete else (min(now(), deadline) - t0)
    out: Result = {
        "messages": n, "sent": len(ids), "lines": len(lines), "complete": complete, "in_order": in_order(numbers),
        "put_per_s": len(ids) / (last_put - t0), "irc_lines_per_s": len(lines) / elapsed_irc if lines else 0.0,
        "capped_s": cap_s if not complete else None,
    }
    if handoffs:
        last_handoff = max(handoffs.values())
        out["handoff_per_s"] = len(handoffs) / (last_handoff - t0)
        out["ratio"] = out["irc_lines_per_s"] / out["handoff_per_s"]
        out["tail_ms"] = ms(last_line - last_handoff) if complete else None
    return out


async def m2i_paced(run: Run, side: Side, watcher: IrcTestClient, n: int, rate: float, grace_s: float) -> Result:
    """2. One message every 1/rate s: PUT -> line, PUT -> hand-off, hand-off -> line."""
    assert run.null is not None
    tag = f"mp{secrets.token_hex(2)}"
    since = watcher.mark()
    puts: list[tuple[float, str]] = []
    t0 = now()
    for i in range(n):
        await sleep_until(t0 + i / rate)
        started = now()
        puts.append((started, await side.sender.send_text(side.room_id, f"{tag} {i:04d} {FILLER}")))
    lines = await irc_lines(watcher, said(side.channel, tag), n, now() + grace_s, since)
    handoffs = await run.null.wait_arrivals([e for _, e in puts], now() + 5)
    arrived = {seq: ln.received_at for ln in lines if (seq := seq_of(ln.text, tag)) is not None}
    e2e, synapse, added = [], [], []
    for i, (put, event_id) in enumerate(puts):
        line_at = arrived.get(i, math.inf)
        handoff = handoffs.get(event_id)
        e2e.append(line_at - put)
        if handoff is not None:
            synapse.append(handoff - put)
            added.append(line_at - handoff)
    inside = await bridge_trace.matrix_to_irc(side.trace, tag, [e for _, e in puts], len(lines)) if side.trace else []
    return {
        "tag": tag,
        **at_bridge(inside, n, "inside", 0.99),
        "messages": n, "lines": len(lines), "in_order": in_order([seq_of(ln.text, tag) or 0 for ln in lines]),
        "e2e_p50_ms": ms(percentile(e2e, 0.5)), "e2e_p99_ms": ms(percentile(e2e, 0.99)),
        "synapse_p50_ms": ms(percentile(synapse, 0.5)), "synapse_p99_ms": ms(percentile(synapse, 0.99)),
        "added_p50_ms": ms(percentile(added, 0.5)), "added_p99_ms": ms(percentile(added, 0.99)),
        "added_max_ms": ms(max(added)) if added else math.inf,
    }


async def i2m_paced(side: Side, speaker: IrcTestClient, n: int, rate: float, grace_s: float) -> Result:
    """3. One IRC line every 1/rate s: PRIVMSG -> event in the Matrix client's /sync."""
    tag = f"ip{secrets.token_hex(2)}"
    sent: list[float] = []
    async with TimelineWatch(side.reader, side.room_id) as watch:
        t0 = now()
        for i in range(n):
            await sleep_until(t0 + i / rate)
            sent.append(now())
            await speaker.privmsg(side.channel, f"{tag} {i:04d} {FILLER}")
        found, events = await watch.wait_lines(tag, n, now() + grace_s + 10)
    seen: dict[int, float] = {}
    for stamp, seq in found:
        seen.setdefault(seq, stamp)
    latencies = [seen.get(i, math.inf) - t for i, t in enumerate(sent)]
    inside = bridge_trace.irc_to_matrix_s(side.trace, tag) if side.trace else []
    return {**latency_result(n, len(seen), events, latencies, [seq for _, seq in found]),
            **at_bridge(inside, n, "inside", 0.95)}


def at_bridge(samples: list[float], n: int, prefix: str, high: float) -> Result:
    """The bridge's own share, from its stamps: p50 and p<high> in ms (a message it did not stamp
    both ways counts as the slowest, like a line that never came); nothing for a bridge without."""
    if not samples:
        return {}
    padded = samples + [math.inf] * max(0, n - len(samples))
    return {f"{prefix}_p50_ms": ms(percentile(padded, 0.5)),
            f"{prefix}_p{round(high * 100)}_ms": ms(percentile(padded, high)), f"{prefix}_stamped": len(samples)}


async def synapse_put_to_sync(sender: MatrixTestClient, reader: MatrixTestClient, room_id: str, n: int,
                              rate: float) -> Result:
    """3'. Synapse's floor: one user PUTs every 1/rate s, another has a /sync long-poll open."""
    tag = f"sp{secrets.token_hex(2)}"
    sent: list[float] = []
    async with TimelineWatch(reader, room_id) as watch:
        t0 = now()
        for i in range(n):
            await sleep_until(t0 + i / rate)
            sent.append(now())
            await sender.send_event(room_id, "m.room.message",
                                    {"msgtype": "m.text", "body": f"{tag} {i:04d} {FILLER}", **MENTIONS_NOBODY})
        found, events = await watch.wait_lines(tag, n, now() + 30)
    seen: dict[int, float] = {}
    for stamp, seq in found:
        seen.setdefault(seq, stamp)
    latencies = [seen.get(i, math.inf) - t for i, t in enumerate(sent)]
    return latency_result(n, len(seen), events, latencies, [seq for _, seq in found])


def latency_result(n: int, arrived: int, events: int, latencies: list[float], order: list[int]) -> Result:
    return {
        "lines": n, "arrived": arrived, "events": events, "in_order": in_order(order),
        "p50_ms": ms(percentile(latencies, 0.5)), "p95_ms": ms(percentile(latencies, 0.95)),
        "max_ms": ms(max(latencies)) if latencies else math.inf,
    }


async def i2m_burst(side: Side, speaker: IrcTestClient, n: int, cap_s: float) -> Result:
    """4. N IRC lines written at once; all must arrive in Matrix, in order."""
    tag = f"ib{secrets.token_hex(2)}"
    async with TimelineWatch(side.reader, side.room_id) as watch:
        t0 = now()
        for i in range(n):
            await speaker.privmsg(side.channel, f"{tag} {i:04d} {FILLER}")
        found, events = await watch.wait_lines(tag, n, t0 + cap_s)
    return burst_result(n, found, events, t0, cap_s)


async def synapse_burst(sender: MatrixTestClient, reader: MatrixTestClient, room_id: str, n: int,
                        cap_s: float, *, extra: dict[str, Any] = MENTIONS_NOBODY) -> Result:
    """4'. Synapse's floor: one sender, N sequential PUTs into one room, until all are in another's /sync."""
    tag = f"sb{secrets.token_hex(2)}"
    async with TimelineWatch(reader, room_id) as watch:
        t0 = now()
        for i in range(n):
            await sender.send_event(room_id, "m.room.message",
                                    {"msgtype": "m.text", "body": f"{tag} {i:04d} {FILLER}", **extra})
        put_s = now() - t0
        found, events = await watch.wait_lines(tag, n, t0 + cap_s)
    result = burst_result(n, found, events, t0, cap_s)
    result["put_per_s"] = n / put_s
    return result


def median_rounds(rounds: list[Result], keys: tuple[str, ...]) -> Result:
    """The rounds of one row as one result: each of ``keys`` is the median over the rounds, with
    ``<key>_min``, ``<key>_max`` and every round's value beside it; a flag (complete, in order,
    one event per line) holds only if it held in every round, and a count is the worst round's."""
    out: Result = {**rounds[-1], "rounds": len(rounds)}
    for key in keys:
        values = [float(r[key]) for r in rounds if r.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
            out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
            out[f"{key}_rounds"] = values
    for flag in ("complete", "in_order", "one_event_per_line"):
        if flag in out:
            out[flag] = all(r[flag] for r in rounds)
    for count in ("lines", "arrived", "sent"):
        if count in out:
            out[count] = min(r[count] for r in rounds)
    return out


async def in_rounds(run: Run, pid: int | None, n: int,
                    scenario: Callable[[], Awaitable[Result]], keys: tuple[str, ...]) -> Result:
    """``scenario`` ``n`` times, each after the servers went quiet; the median round (see
    :func:`median_rounds`)."""
    rounds = []
    for _ in range(n):
        await run.settle(pid)
        rounds.append(await scenario())
    return median_rounds(rounds, keys)


M2I_BURST_KEYS = ("put_per_s", "handoff_per_s", "irc_lines_per_s", "ratio", "tail_ms")
M2I_PACED_KEYS = ("e2e_p50_ms", "e2e_p99_ms", "synapse_p50_ms", "synapse_p99_ms", "added_p50_ms",
                  "added_p99_ms", "added_max_ms", "inside_p50_ms", "inside_p99_ms")
LATENCY_KEYS = ("p50_ms", "p95_ms", "max_ms", "inside_p50_ms", "inside_p95_ms")
RATE_KEYS = ("lines_per_s",)
CAPACITY_KEYS = ("accept_per_s", "lines_per_s")


def burst_result(n: int, found: list[tuple[float, int]], events: int, t0: float, cap_s: float) -> Result:
    numbers = [seq for _, seq in found]
    complete = len(set(numbers)) >= n
    last = max((stamp for stamp, _ in found), default=math.inf)
    elapsed = (last - t0) if complete else cap_s
    return {
        "lines": n, "arrived": len(set(numbers)), "events": events, "in_order": in_order(numbers),
        "one_event_per_line": events == len(found), "complete": complete,
        "lines_per_s": len(set(numbers)) / elapsed if found else 0.0,
    }


async def capacity(run: Run, side: Side, watcher: IrcTestClient, n: int, per_txn: int = 100) -> Result:
    """5. Synthetic transactions straight into bridgekit; IRC lines/s out (no Synapse in the loop)."""
    slot = run.slot
    assert slot is not None
    tag = f"cp{secrets.token_hex(2)}"
    ts = int(time.time() * 1000)
    requests: list[bytes] = []
    for k in range(0, n, per_txn):
        events = [{
            "type": "m.room.message", "room_id": side.room_id, "sender": side.sender.user_id,
            "event_id": f"$bench-{tag}-{i}", "origin_server_ts": ts + i,
            "content": {"msgtype": "m.text", "body": f"{tag} {i:05d} {FILLER}"},
        } for i in range(k, min(n, k + per_txn))]
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        requests.append(wire.build_request("PUT", f"/_matrix/app/v1/transactions/{tag}-{k}", slot.bridge_port, body,
                                           {"Authorization": f"Bearer {slot.hs_token}"}))
    since = watcher.mark()
    connection = wire.Connection(slot.bridge_port, timeout=60)
    statuses: list[int] = []
    t0 = now()
    try:
        for raw in requests:
            statuses.append((await connection.request(raw)).status)
        accepted_s = now() - t0
    finally:
        await connection.close()
    lines = await irc_lines(watcher, said(side.channel, tag), n, now() + 120, since)
    numbers = [seq for ln in lines if (seq := seq_of(ln.text, tag)) is not None]
    last = lines[-1].received_at if lines else math.inf
    return {
        "events": n, "transactions": len(requests), "answered_200": sum(1 for s in statuses if s == 200),
        "accept_per_s": n / accepted_s, "lines": len(lines), "in_order": in_order(numbers),
        "lines_per_s": len(lines) / (last - t0) if lines else 0.0,
    }


async def virtual_users(run: Run, alice: MatrixTestClient, n: int, budget_s: float) -> Result:
    """6. bridgekit against ngIRCd: N Matrix users join and speak once each; RSS before they came and after."""
    slot, null = run.slot, run.null
    assert slot is not None
    assert null is not None
    ngircd = NgIRCd(run.work / "ngircd")
    await asyncio.to_thread(ngircd.start)

    async def stop_ngircd() -> None:
        await asyncio.to_thread(ngircd.stop)

    run._cleanups.append(stop_ngircd)
    end = now() + budget_s
    bridge = await run.start_bridgekit("bridgekit-vu", ngircd.port, f"vubot{secrets.token_hex(2)}", MANY_USERS)
    assert bridge.pid is not None
    watcher = await run.irc(f"vuwatch{secrets.token_hex(2)}", ngircd.port)
    channel = f"#vu{secrets.token_hex(3)}"
    await watcher.join(channel)
    room_id = await alice.join(slot.alias(channel))
    await watcher.wait_for(lambda ln: ln.command == "JOIN" and not ln.is_from(watcher.nick), 60)
    users = AsUsers(run.synapse.url, null)
    tag = f"vu{secrets.token_hex(2)}"
    localparts = [f"{null.localpart_prefix}{tag}u{i:04d}" for i in range(n)]
    ids: list[str] = []
    try:
        # Before any of the users exists: with join_on_portal_join (shipped), a user's connection
        # opens when they join the portal, so a baseline taken after the joins missed most of it.
        await asyncio.sleep(3.0)
        baseline = rss_bytes(bridge.pid)
        gate = asyncio.Semaphore(16)

        async def enrol(localpart: str) -> None:
            async with gate:
                user_id = await users.register(localpart)
                await users.join(user_id, room_id)
                ids.append(user_id)

        log(f"virtual users: registering and joining {n} Matrix users")
        t_join = now()
        await asyncio.gather(*(enrol(lp) for lp in localparts))
        joined_s = now() - t_join
        since = watcher.mark()
        speak_gate = asyncio.Semaphore(8)
        log(f"virtual users: {n} users speak once (RSS before they came {baseline / 2**20:.0f} MB, "
            f"after they joined {rss_bytes(bridge.pid) / 2**20:.0f} MB)")

        async def speak(i: int, user_id: str) -> None:
            if now() > end:
                return
            async with speak_gate:
                await users.send_text(user_id, room_id, f"{tag} {i:04d} hello from my own connection")

        t0 = now()
        await asyncio.gather(*(speak(i, u) for i, u in enumerate(ids)))
        lines = await irc_lines(watcher, said(channel, tag), n, max(end, now() + 10), since)
        spoke_s = now() - t0
        await asyncio.sleep(3.0)
        after = rss_bytes(bridge.pid)
        sources = {ln.source for ln in lines}
        connections = len(sources)
        delta = after - baseline
        return {
            "users": n, "connections": connections, "lines": len(lines), "join_s": joined_s, "speak_s": spoke_s,
            "rss_before_mb": baseline / 2**20, "rss_after_mb": after / 2**20, "delta_mb": delta / 2**20,
            "per_connection_kb": delta / 1024 / connections if connections else math.nan,
            "delta_for_1000_mb": delta / 2**20 / connections * 1000 if connections else math.nan,
        }
    finally:
        await users.aclose()
        await bridge.stop()


# ---- report -------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "missed"
        return f"{value:,.{digits}f}"
    return str(value)


def fr(r: Result, key: str, digits: int = 1) -> str:
    """A row's value: the median over its rounds with the range, or the one run's value."""
    value = fmt(r.get(key), digits)
    if r.get("rounds", 1) > 1 and f"{key}_min" in r:
        return f"{value} ({fmt(r[f'{key}_min'], digits)}-{fmt(r[f'{key}_max'], digits)})"
    return value


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)))
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))


def report(run: Run) -> list[tuple[str, str, bool | None]]:
    s = run.results["scenarios"]
    goals: list[tuple[str, str, bool | None]] = []

    def check(name: str, value: float | None, goal: float, *, at_most: bool = False, unit: str = "") -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            goals.append((name, f"not measured (goal {'<=' if at_most else '>='} {goal:g}{unit})", None))
            return
        ok = value <= goal if at_most else value >= goal
        goals.append((name, f"{fmt(value, 2)}{unit} (goal {'<=' if at_most else '>='} {goal:g}{unit})", ok))

    capacity_row, defaults_row = f"{BK}, {CAPACITY.name}", f"{BK}, {DEFAULTS.name}"
    b1 = s.get("1_m2i_burst", {})
    if b1:
        rows = []
        for name, r in b1.items():
            rows.append([name, r.get("settings", "-"), fmt(r.get("rounds", 1)), fmt(r["sent"]), fmt(r["lines"]),
                         fmt(r["in_order"]), fr(r, "put_per_s"), fr(r, "handoff_per_s"), fr(r, "irc_lines_per_s"),
                         fr(r, "ratio", 2), fr(r, "tail_ms"), f"{r['capped_s']:g} s" if r.get("capped_s") else "-"])
        n = next(iter(b1.values()))["messages"]
        table(f"1. Matrix -> IRC burst: {n} sequential PUTs, median (min-max) of the rounds (goal, with pacing "
              f"off: IRC/hand-off >= {GOAL_M2I_RATIO}, last line <= {GOAL_M2I_TAIL_MS:g} ms after the last hand-off)",
              ["bridge", "settings", "rounds", "sent", "lines", "in order", "PUT/s", "hand-off/s", "IRC lines/s",
               "ratio", "tail ms", "capped"], rows)
        print("defaults: what a deployment meets; capacity: pacing off where the bridge allows it "
              "(heisenbridge's throttle has no setting: no capacity row). Defaults rows run once, capped.")
        bk = b1.get(capacity_row, {})
        check("1. M->IRC burst rate / Synapse hand-off", bk.get("ratio"), GOAL_M2I_RATIO)
        check("1. M->IRC last line after last hand-off", bk.get("tail_ms"), GOAL_M2I_TAIL_MS, at_most=True, unit=" ms")
        if bk:
            goals.append(("1. M->IRC all lines, in order", "", bool(bk["complete"] and bk["in_order"])))
    b2 = s.get("2_m2i_paced", {})
    if b2:
        rows = [[name, r.get("settings", "-"), fmt(r.get("rounds", 1)), f"{r['lines']}/{r['messages']}",
                 fmt(r["in_order"]), fr(r, "e2e_p50_ms"), fr(r, "e2e_p99_ms"), fr(r, "synapse_p50_ms"),
                 fr(r, "synapse_p99_ms"), fr(r, "added_p50_ms"), fr(r, "added_p99_ms"), fr(r, "inside_p50_ms"),
                 fr(r, "inside_p99_ms")] for name, r in b2.items()]
        table(f"2. Matrix -> IRC paced {run.plan.rate:g}/s, ms, median (min-max) of the rounds (Synapse = PUT -> "
              f"null appservice; bridge = hand-off -> line; at bridge = the bridge's own stamps, transaction "
              f"read -> line on its IRC socket; goal, with pacing off: bridge p50 <= "
              f"{GOAL_ADDED_P50_MS:g}, p99 <= {GOAL_ADDED_P99_MS:g})",
              ["bridge", "settings", "rounds", "lines", "in order", "e2e p50", "e2e p99", "Synapse p50",
               "Synapse p99", "bridge p50", "bridge p99", "at bridge p50", "at bridge p99"], rows)
        bk = b2.get(capacity_row, {})
        if defaults_row in b2:
            goals.append(("2. M->IRC bridge-added p50 with the shipped pacing (no goal: what a deployment meets)",
                          f"{fmt(b2[defaults_row]['added_p50_ms'])} ms", None))
        check("2. M->IRC bridge-added p50", bk.get("added_p50_ms"), GOAL_ADDED_P50_MS, at_most=True, unit=" ms")
        check("2. M->IRC bridge-added p99", bk.get("added_p99_ms"), GOAL_ADDED_P99_MS, at_most=True, unit=" ms")
        # The same goals on the bridge's own stamps: the hand-off above is another appservice's, which
        # Synapse may serve before or after this bridge.
        check("2. M->IRC bridge-added p50, at the bridge", bk.get("inside_p50_ms"), GOAL_ADDED_P50_MS, at_most=True,
              unit=" ms")
        check("2. M->IRC bridge-added p99, at the bridge", bk.get("inside_p99_ms"), GOAL_ADDED_P99_MS, at_most=True,
              unit=" ms")
    merge_note = f" (incl. its {HEISENBRIDGE_MERGE_WINDOW_S * 1000:.0f} ms merge window)"
    b3 = s.get("3_i2m_paced", {})
    if b3:
        rows = [[name + (merge_note if name == HB else ""), fmt(r.get("rounds", 1)), f"{r['arrived']}/{r['lines']}",
                 fmt(r["events"]), fmt(r["in_order"]), fr(r, "p50_ms"), fr(r, "p95_ms"), fr(r, "max_ms"),
                 fr(r, "inside_p50_ms"), fr(r, "inside_p95_ms")]
                for name, r in b3.items()]
        table(f"3. IRC -> Matrix paced {run.plan.rate:g}/s: PRIVMSG -> event in /sync, ms, median (min-max) of the "
              f"rounds (Synapse row: PUT -> another user's /sync; at bridge = the bridge's own stamps, line read "
              f"from its IRC socket -> Matrix send begins; goal bridgekit p50 <= {GOAL_I2M_P50_MS:g})",
              ["path", "rounds", "lines", "events", "in order", "p50", "p95", "max", "at bridge p50",
               "at bridge p95"], rows)
        if HB in b3:
            print(f"heisenbridge holds each IRC line for {HEISENBRIDGE_MERGE_WINDOW_S:g} s by design, to merge the "
                  "lines that follow it into one Matrix event (its event_queue): that window is in its figures.")
        check("3. IRC->M paced p50", b3.get(BK, {}).get("p50_ms"), GOAL_I2M_P50_MS, at_most=True, unit=" ms")
    b4 = s.get("4_i2m_burst", {})
    if b4:
        floor = b4.get(SYN, {}).get("lines_per_s")
        rows = []
        for name, r in sorted(b4.items(), key=lambda item: item[0] != SYN):
            ratio = r["lines_per_s"] / floor if floor and name != SYN else None
            rows.append([name + (merge_note if name == HB else ""), fmt(r.get("rounds", 1)),
                         f"{r['arrived']}/{r['lines']}", fmt(r["events"]), fmt(r["in_order"]),
                         fmt(r["one_event_per_line"]), fr(r, "lines_per_s"), fmt(r.get("lines_per_s_max")),
                         fmt(ratio, 2)])
        table(f"4. IRC -> Matrix burst (all lines written at once; Synapse rows: one user's sequential PUTs of "
              f"the bridge's content, until in another's /sync; lines/s median (min-max) of the rounds; goal "
              f"bridgekit >= {GOAL_I2M_RATIO}x, median of the paired rounds)",
              ["path", "rounds", "lines", "events", "in order", "1 event/line", "lines/s", "best", "vs Synapse"], rows)
        bk = b4.get(BK, {})
        ratios = bk.get("round_ratios") or []
        if ratios:
            print(f"rounds (Synapse, then bridgekit): bridgekit / Synapse = "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
        check("4. IRC->M burst rate / Synapse one-sender rate (median of the rounds)",
              statistics.median(ratios) if ratios else None, GOAL_I2M_RATIO)
        if bk:
            goals.append(("4. IRC->M all lines, in order, one event each", "",
                          bool(bk["complete"] and bk["in_order"] and bk["one_event_per_line"])))
    b5 = s.get("5_capacity", {})
    if b5:
        rows = [[name, CAPACITY.bridgekit_label(), fmt(r.get("rounds", 1)), fmt(r["events"]), fmt(r["answered_200"]),
                 fr(r, "accept_per_s"), fmt(r["lines"]), fmt(r["in_order"]), fr(r, "lines_per_s")]
                for name, r in b5.items()]
        table(f"5. Capacity without Synapse: transactions of 100 events PUT straight into the bridge, median "
              f"(min-max) of the rounds (goal >= {GOAL_CAPACITY:g} lines/s)",
              ["bridge", "settings", "rounds", "events", "200s", "accepted/s", "IRC lines", "in order",
               "IRC lines/s"], rows)
        check("5. capacity, IRC lines/s", b5.get(BK, {}).get("lines_per_s"), GOAL_CAPACITY)
    b6 = s.get("6_rss", {})
    if b6:
        idle = b6.get("idle_mb", {})
        rows = [[name, fmt(mb)] for name, mb in idle.items()]
        table(f"6a. RSS idle after set-up, MB (goal bridgekit <= {GOAL_IDLE_RSS_MB:g})", ["bridge", "RSS MB"], rows)
        check("6. idle RSS", idle.get(BK), GOAL_IDLE_RSS_MB, at_most=True, unit=" MB")
        vu = b6.get("virtual_users")
        if vu:
            table(f"6b. bridgekit on ngIRCd, Matrix users speaking once each (goal: 1,000 connections cost <= "
                  f"{GOAL_VU_RSS_MB:g} MB; settings {MANY_USERS.bridgekit_label()})",
                  ["users", "connections", "join s", "speak s", "RSS before", "RSS after", "delta MB", "KB/conn",
                   "MB per 1,000"],
                  [[fmt(vu["users"]), fmt(vu["connections"]), fmt(vu["join_s"]), fmt(vu["speak_s"]),
                    fmt(vu["rss_before_mb"]), fmt(vu["rss_after_mb"]), fmt(vu["delta_mb"]),
                    fmt(vu["per_connection_kb"]), fmt(vu["delta_for_1000_mb"])]])
            check("6. RSS per 1,000 virtual users", vu.get("delta_for_1000_mb"), GOAL_VU_RSS_MB, at_most=True,
                  unit=" MB")
    print("\nSummary (bridgekit's goals)")
    for name, value, ok in goals:
        mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {mark}  {name}{': ' + value if value else ''}")
    for text in run.results["notes"]:
        print(f"  note: {text}")
    return goals


# ---- main ---------------------------------------------------------------------------------------


async def measure(run: Run) -> None:
    plan = run.plan
    await run.start_servers()
    watcher = await run.irc(f"watch{secrets.token_hex(2)}")
    speaker = await run.irc(f"speak{secrets.token_hex(2)}")

    # Synapse's own figures for the reference rows of scenario 4, before any bridge (the paced
    # floor of scenario 3 and the main burst reference take turns with the bridge, below).
    floor_a, floor_b = await run.user("floora"), await run.user("floorb")
    room = await floor_a.create_room(name="floor", invite=[floor_b.user_id])
    await floor_b.join(room)
    await floor_b.sync_once(0)
    log(f"Synapse alone: one-sender burst, body only ({plan.rounds} rounds)")
    run.scenario("4_i2m_burst")[SYN_BARE] = await in_rounds(
        run, None, plan.rounds, lambda: synapse_burst(floor_a, floor_b, room, plan.burst, 120, extra={}), RATE_KEYS)
    # The same burst sent the way every bridge sends: as an appservice user. Synapse takes longer
    # over those requests than over a plain user's, which bounds any bridge that keeps order.
    assert run.null is not None
    await floor_a.invite(room, run.null.bot_user_id)
    await run.join_null_bot(room)
    as_sender = MatrixTestClient(run.synapse.url, run.null.as_token, run.null.bot_user_id)
    run.clients.append(as_sender)
    log(f"Synapse alone: one-sender burst, appservice sender ({plan.rounds} rounds)")
    run.scenario("4_i2m_burst")[SYN_AS] = await in_rounds(
        run, None, plan.rounds, lambda: synapse_burst(as_sender, floor_b, room, plan.burst, 120), RATE_KEYS)
    await run.leave_null_bot(room)  # the room is the plain reference's again

    log("bridgekit: set-up (capacity settings: pacing off)")
    bot_nick = f"bkbot{secrets.token_hex(2)}"
    bk, bridge = await run.setup_bridgekit(watcher, speaker, bot_nick)
    run.scenario("6_rss").setdefault("idle_mb", {})[BK] = bk.idle_rss / 2**20
    capacity_row = f"{BK}, {CAPACITY.name}"
    log(f"bridgekit: 1. Matrix -> IRC burst ({plan.rounds} rounds)")
    run.scenario("1_m2i_burst")[capacity_row] = {
        **await in_rounds(run, bk.pid, plan.rounds,
                          lambda: m2i_burst(run, bk, watcher, plan.burst, None), M2I_BURST_KEYS),
        "settings": CAPACITY.bridgekit_label()}
    log(f"bridgekit: 2. Matrix -> IRC paced ({plan.rounds} rounds)")
    run.scenario("2_m2i_paced")[capacity_row] = {
        **await in_rounds(run, bk.pid, plan.rounds,
                          lambda: m2i_paced(run, bk, watcher, plan.paced, plan.rate, 30), M2I_PACED_KEYS),
        "settings": CAPACITY.bridgekit_label()}
    await run.leave_null_bot(bk.room_id)
    log(f"Synapse alone: PUT -> /sync paced ({plan.rounds} rounds)")
    run.scenario("3_i2m_paced")[SYN] = await in_rounds(
        run, bk.pid, plan.rounds, lambda: synapse_put_to_sync(floor_a, floor_b, room, plan.paced, plan.rate),
        LATENCY_KEYS)
    log(f"bridgekit: 3. IRC -> Matrix paced ({plan.rounds} rounds)")
    run.scenario("3_i2m_paced")[BK] = await in_rounds(
        run, bk.pid, plan.rounds, lambda: i2m_paced(bk, speaker, plan.paced, plan.rate, 30), LATENCY_KEYS)
    # Scenario 4 in rounds: each round is the reference (a plain user's sequential sends of the
    # same content into a room of its own) and then the bridge, back to back. Synapse's rate here
    # swings by 20 % between runs a minute apart (its background updates, the machine), so one
    # reference run measured at another time decides nothing; the goal is judged on the median of
    # the rounds' ratios, each taken within one Synapse state.
    log(f"bridgekit: 4. IRC -> Matrix burst ({plan.i2m_rounds} rounds, each after Synapse's own)")
    references: list[Result] = []
    bridged: list[Result] = []
    for _ in range(plan.i2m_rounds):
        await run.settle(bk.pid)
        references.append(await synapse_burst(floor_a, floor_b, room, plan.burst, 120))
        await run.settle(bk.pid)
        bridged.append(await i2m_burst(bk, speaker, plan.burst, 120))
    run.scenario("4_i2m_burst")[SYN] = median_rounds(references, RATE_KEYS)
    run.scenario("4_i2m_burst")[BK] = {
        **median_rounds(bridged, RATE_KEYS),
        "round_ratios": [b["lines_per_s"] / r["lines_per_s"] if r["lines_per_s"] else 0.0
                         for r, b in zip(references, bridged, strict=True)],
    }
    log(f"bridgekit: 5. capacity without Synapse ({plan.rounds} rounds)")
    run.scenario("5_capacity")[BK] = await in_rounds(
        run, bk.pid, plan.rounds, lambda: capacity(run, bk, watcher, plan.capacity), CAPACITY_KEYS)
    await bridge.stop()

    # The row people meet: the same bridge and database, restarted with the shipped pacing.
    log(f"bridgekit: restarted with its defaults ({DEFAULTS.bridgekit_label()})")
    bridge = await run.start_bridgekit("bridgekit", run.inspircd.port, bot_nick, DEFAULTS)
    assert bridge.pid is not None
    bk.pid = bridge.pid
    await run.join_null_bot(bk.room_id)
    await run.warm_up(bk, watcher, speaker)
    defaults_row = f"{BK}, {DEFAULTS.name}"
    log(f"bridgekit defaults: 2. Matrix -> IRC paced (waits {plan.hb_paced_grace_s:g} s after the last message)")
    await run.settle(bk.pid)
    since = watcher.mark()
    paced = await m2i_paced(run, bk, watcher, plan.paced, plan.rate, plan.hb_paced_grace_s)
    run.scenario("2_m2i_paced")[defaults_row] = {**paced, "rounds": 1, "settings": DEFAULTS.bridgekit_label()}
    # The paced lines still queued behind the pacing must be out before the burst starts.
    await irc_lines(watcher, said(bk.channel, paced["tag"]), plan.paced, now() + 120, since)
    log(f"bridgekit defaults: 1. Matrix -> IRC burst (capped at {plan.hb_burst_cap_s:g} s)")
    await run.settle(bk.pid)
    run.scenario("1_m2i_burst")[defaults_row] = {
        **await m2i_burst(run, bk, watcher, plan.burst, plan.hb_burst_cap_s), "rounds": 1,
        "settings": DEFAULTS.bridgekit_label()}
    await run.leave_null_bot(bk.room_id)
    await bridge.stop()

    if run.hb is not None:
        try:
            await measure_heisenbridge(run, watcher, speaker)
        except (PeerUnavailable, TimeoutError, IrcWaitTimeout, RuntimeError) as exc:
            run.note(f"heisenbridge stopped early: {exc!r}"[:600])
        await run.hb.stop()
    elif run.hb_problem:
        run.note(f"heisenbridge not measured: {run.hb_problem}")

    if plan.vu > 0:
        budget = min(360.0, run.remaining())
        if budget < 30:
            run.note(f"virtual users skipped: {budget:.0f} s of the time budget left")
            return
        log(f"bridgekit: 6. {plan.vu} virtual users on ngIRCd (at most {budget:.0f} s)")
        run.scenario("6_rss")["virtual_users"] = await virtual_users(run, bk.sender, plan.vu, budget)


async def measure_heisenbridge(run: Run, watcher: IrcTestClient, speaker: IrcTestClient) -> None:
    plan = run.plan
    log(f"heisenbridge {run.hb_version}: set-up")
    hb, network = await run.setup_heisenbridge(watcher, speaker)
    run.scenario("6_rss").setdefault("idle_mb", {})[HB] = hb.idle_rss / 2**20
    # IRC -> Matrix first: heisenbridge's throttled IRC output queue would still be draining otherwise.
    await run.leave_null_bot(hb.room_id)
    log(f"heisenbridge: 3. IRC -> Matrix paced ({plan.rounds} rounds)")
    run.scenario("3_i2m_paced")[HB] = await in_rounds(
        run, hb.pid, plan.rounds, lambda: i2m_paced(hb, speaker, plan.paced, plan.rate, 30), LATENCY_KEYS)
    log(f"heisenbridge: 4. IRC -> Matrix burst ({plan.rounds} rounds)")
    run.scenario("4_i2m_burst")[HB] = await in_rounds(
        run, hb.pid, plan.rounds, lambda: i2m_burst(hb, speaker, plan.burst, 120), RATE_KEYS)
    assert run.hb is not None
    assert run.null is not None
    await invite_as(run.synapse.url, run.hb.as_token, hb.room_id, run.null.bot_user_id)
    await run.join_null_bot(hb.room_id)
    log(f"heisenbridge: 2. Matrix -> IRC paced (waits {plan.hb_paced_grace_s:g} s after the last message)")
    await run.settle(hb.pid)
    hb_row = f"{HB}, {DEFAULTS.name}"
    run.scenario("2_m2i_paced")[hb_row] = {
        **await m2i_paced(run, hb, watcher, plan.paced, plan.rate, plan.hb_paced_grace_s), "rounds": 1,
        "settings": DEFAULTS.heisenbridge_label()}
    nick = next((ln.source for ln in watcher.lines(said(hb.channel, "warmup")) if ln.source), None)
    if nick is None:
        raise RuntimeError("heisenbridge's IRC nick unknown")
    await run.reset_heisenbridge(hb, network, watcher, nick)
    log(f"heisenbridge: 1. Matrix -> IRC burst (capped at {plan.hb_burst_cap_s:g} s)")
    await run.settle(hb.pid)
    run.scenario("1_m2i_burst")[hb_row] = {
        **await m2i_burst(run, hb, watcher, plan.burst, plan.hb_burst_cap_s), "rounds": 1,
        "settings": DEFAULTS.heisenbridge_label()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def main_async(args: argparse.Namespace) -> int:
    run = Run(args)
    quick = " (--quick: fewer rounds and shorter bursts, not figures to quote)" if args.quick else ""
    print(f"IRC benchmark ({'quick' if args.quick else 'full'}){quick}: burst {run.plan.burst}, paced "
          f"{run.plan.paced} at {run.plan.rate:g}/s, capacity {run.plan.capacity} events, {run.plan.vu} virtual "
          f"users, {run.plan.rounds} rounds per row (medians); scratch {run.work}", flush=True)
    failed = False
    try:
        async with asyncio.timeout(run.plan.budget_s + 240):
            await measure(run)
    except Exception as exc:
        failed = True
        run.note(f"run failed: {exc!r}"[:1500])
    finally:
        await run.stop_all()
    run.results["meta"] = {"quick": bool(args.quick), "plan": run.plan.__dict__, "heisenbridge": run.hb_version,
                           "seconds": now() - run.started}
    goals = report(run)
    run.results["goals"] = [{"goal": g, "value": v, "met": ok} for g, v, ok in goals]
    print(f"\nTotal time {now() - run.started:.0f} s")
    if args.json:
        path = Path(args.json)
        text = json.dumps(_jsonable(run.results), indent=2)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

        await asyncio.to_thread(write)
        print(f"Results written to {path}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true",
                        help="100-message bursts, 25 paced, 2,000 capacity events, 3 rounds, 100 virtual users")
    parser.add_argument("--json", nargs="?", const=str(_REPO / ".bench" / "irc-results.json"),
                        help="also write the results as JSON (default path .bench/irc-results.json)")
    parser.add_argument("--no-heisenbridge", action="store_true", help="bridgekit and Synapse only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (configs, databases, logs)")
    parser.add_argument("--synapse-log", default="WARNING", metavar="LEVEL",
                        help="Synapse's log level (INFO logs every request with its timings)")
    parser.add_argument("--vu", type=int, default=None, help="virtual users for the RSS test (0: skip)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
