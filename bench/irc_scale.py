"""10,000 Matrix users on IRC through a connection keeper: memory, a bridge restart, a keeper restart.

    .venv/bin/python bench/irc_scale.py [--users 10000] [--portals 100] [--rate 100] [--matrix-users 100]

Real and on loopback: Synapse, ``bridgekit run`` with the IRC connector and a ``keeper`` section
(``lines_per_second: 0``), a keeper process (``python -m bridges.irc.keeper``), Redis, and ngIRCd
with its limits off (MaxConnections, MaxConnectionsIP, MaxJoins 0, no penalties, no DNS or ident
lookups); ``ulimit -n`` is raised to its hard limit here and inherited by every child. Matrix users
belong to a second, URL-less appservice of the benchmark's own: registered with its as_token (no
password hashing) and joined with ``?user_id=``; Synapse pushes it nothing.

What stands in: Synapse joins about 5-12 users a second on this machine, so 10,000 joins would
take the whole quarter of an hour. Of ``--users``, ``--matrix-users`` join their portal through
Synapse, and the bridge opens their connections as it does for anyone (``join_on_portal_join``);
the rest are **seeded**: this process plays an earlier run of the bridge, opening their
connections in the keeper with the specs the bridge makes (``KeptNetwork.link``: 20 fallback
nicks, the section's pacing and keepalive) and reading the inbound stream, and then the real
bridge starts and **adopts** them, as after any restart. Those seeded users are not members of
the Matrix rooms: the bridge holds their sessions and links, but not the room-membership state
joining would add (the Synapse-joined users' figures show it).

1. Seed N - M connections, each joining one of ``--portals`` channels (``#c0`` ...), round robin
   (an IRC observer in every channel counts the JOINs); a new bridge adopts them; M Matrix users
   join the portals through Synapse; until the bridge has read the inbound stream.
2. RSS (VmRSS) of the bridge process, the keeper and Redis, over their idle RSS (the same
   processes' with no user, measured first): the issue's figure is their total. Beside it (measured
   after step 3), today's connections held in the bridge process without a keeper (``IrcLink``; RSS
   growth per connection in a child process, 1,000 connections).
3. The bridge SIGKILLed; an IRC user says a line in ``#c0``; the bridge is started again: the time
   from the new process's start to that line in the portal (a Matrix user's ``/sync``), when an
   IRC observer in the channel got the line and when the keeper put it on its stream (the IRC
   server's own delay is not the bridge's), and the QUIT, PART, JOIN and NICK lines the observer
   saw from the kill on (none expected).
4. The keeper SIGKILLed and started again: the time until all N + 2 (the users, the watcher, the
   bot) are connected again at ``--rate`` (the keeper's ``--connects-per-second``); and what the
   reconnects left the bridge to read on the inbound stream, with its reading rate.

Every process binds 127.0.0.1 and is stopped by PID; scratch files live in ``.bench/scale-*``
(kept with ``BENCH_KEEP=1``). With ``BENCH_SPY=/path/to/py-spy`` the restarted bridge's first 40 s (and the keeper's
meanwhile) are sampled (folded stacks in the scratch directory, and the bridge logs at INFO: its steps' times;
keep them with ``BENCH_KEEP=1``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

_REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.irc_peer import AsUsers, NullAppservice  # noqa: E402
from bridgekit.demo.irc_client import IrcTestClient  # noqa: E402
from bridgekit.demo.matrix_client import MatrixTestClient  # noqa: E402
from bridgekit.demo.processes import spawn, terminate  # noqa: E402
from bridgekit.testing.bridge_process import BridgeProcess  # noqa: E402
from bridgekit.testing.synapse import AppserviceSlot, SynapseServer  # noqa: E402
from bridges.irc.keeper import protocol as p  # noqa: E402
from bridges.irc.keeper.client import KeeperClient  # noqa: E402
from bridges.irc.keeper.kept_link import KeptLink  # noqa: E402
from bridges.irc.keeper.kept_network import NEXT_NICKS  # noqa: E402
from bridges.irc.lines import join  # noqa: E402
from bridges.irc.nicks import ident_for  # noqa: E402
from tests.servers.ircd import NgIRCd  # noqa: E402
from tests.servers.redis_server import RedisServer  # noqa: E402

ENROL_CONCURRENCY = 16
"""Registrations and joins in flight at Synapse at once."""
SAID = "first line after the bridge restart"
NETWORK = "irc"
"""The connector's name in the bridge's config: the network's name in the keeper's IDs."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (keeper, servers) inherit it
    return hard


def baseline_per_connection_kb(port: int, count: int) -> float:
    """Connections held in-process as today (``IrcLink``): RSS growth per connection, measured in
    a child so that nothing else of this run is counted."""
    code = f"""
import asyncio, sys
sys.path.insert(0, {str(_REPO)!r})
from bench.irc_scale import rss_kb
import os
from bridges.irc.link import IrcLink
async def main():
    links = [IrcLink(host="127.0.0.1", port={port}, tls=False, nick=f"b{{n}}x", ident="b", realname="b",
                     on_event=lambda *a: None, lines_per_second=0, keepalive=0) for n in range({count})]
    await links[0].connect()
    before = rss_kb(os.getpid())
    for chunk in range(1, {count}, 8):  # ngIRCd listens with a backlog of 10
        await asyncio.gather(*(link.connect(timeout=120) for link in links[chunk:chunk + 8]))
    print((rss_kb(os.getpid()) - before) / ({count} - 1))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the in-process baseline failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def count_connected(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count(": connected as ") if log_path.exists() else 0


async def wait_until(what: str, done: Any, deadline_s: float, every: float = 0.5) -> float:
    began = time.monotonic()
    while not done():
        if time.monotonic() - began > deadline_s:
            raise TimeoutError(f"{what}: not after {deadline_s:.0f} s")
        await asyncio.sleep(every)
    return time.monotonic() - began


def comings_and_goings(observer: IrcTestClient, speaker: str) -> Any:
    return lambda line: (line.command in ("QUIT", "PART", "JOIN", "NICK")
                         and not line.is_from(observer.nick) and not line.is_from(speaker))


class Bench:
    def __init__(self, users: int, portals: int, rate: float, matrix_users: int) -> None:
        self.users, self.portals, self.rate, self.matrix_users = users, portals, rate, min(matrix_users, users)
        self.observer: IrcTestClient | None = None
        scratch = _REPO / ".bench"
        scratch.mkdir(exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="scale-", dir=scratch))
        self.ngircd = NgIRCd(self.work / "ngircd")
        self.redis = RedisServer(self.work / "redis")
        self.synapse = SynapseServer(self.work / "synapse")
        self.load = NullAppservice("localhost")  # its registration is written without a URL
        self.slot: AppserviceSlot | None = None
        self.keepers: list[subprocess.Popen[bytes]] = []
        self.bridges: list[BridgeProcess] = []
        self.closing: list[Any] = []
        self.rows: list[tuple[str, str]] = []

    def row(self, what: str, figure: str) -> None:
        log(f"{what}: {figure}")
        self.rows.append((what, figure))

    # ---- processes ---------------------------------------------------------------------------

    async def start_servers(self) -> None:
        await asyncio.to_thread(self.ngircd.start)
        await asyncio.to_thread(self.redis.start)
        self.synapse.write_config()
        self.slot = AppserviceSlot("scale", appservice_id=f"bench-scale-{secrets.token_hex(3)}", prefix="_bk_",
                                   homeserver_url=self.synapse.url, server_name=self.synapse.server_name,
                                   connector="irc")
        load_registration = self.work / "load-registration.yaml"
        self.load.write_registration(load_registration)
        text = load_registration.read_text().replace(f"url: {self.load.url}", "url: null")
        load_registration.write_text(text)  # Synapse pushes it nothing: no work a real deployment has
        self.synapse.appservice_registrations = [
            self.slot.write_registration(self.work / "bridge-registration.yaml"), load_registration]
        await asyncio.to_thread(self.synapse.start)

    def start_keeper(self) -> Path:
        log_path = self.work / f"keeper-{len(self.keepers) + 1}.log"
        argv = [sys.executable, "-m", "bridges.irc.keeper", "--redis-url", self.redis.url,
                "--connects-per-second", str(self.rate)]
        self.keepers.append(spawn(argv, log_path=log_path))
        return log_path

    async def start_bridge(self) -> BridgeProcess:
        slot = self.slot
        assert slot is not None
        name = f"bridge-{len(self.bridges) + 1}"
        config = slot.write_bridge_config(
            self.work / f"{name}.yaml", f"sqlite+aiosqlite:///{self.work / 'bridge.db'}",
            connectors={"irc": {
                "server": "127.0.0.1", "port": self.ngircd.port, "tls": False, "bot_nick": "scalebot",
                "virtual_users": True, "lines_per_second": 0,
                "keeper": {"redis_url": self.redis.url, "reply_timeout_seconds": 900},
            }},
            permissions={self.synapse.server_name: "admin"}, appservice={"public_url": slot.bridge_url},
            logging={"level": "INFO" if os.environ.get("BENCH_SPY") else "WARNING", "access_log": False},
        )
        bridge = BridgeProcess(config, env={"PYTHONPATH": str(_REPO)}, log_path=self.work / f"{name}.log")
        self.bridges.append(bridge)
        bridge.start()
        return bridge

    def spy_on(self, bridge: BridgeProcess) -> None:
        """With ``BENCH_SPY=<py-spy>``: the restarted bridge's first 40 s, and the keeper's, sampled (``py-spy
        record -f raw``, folded stacks in the scratch directory): where its start goes."""
        spy = os.environ.get("BENCH_SPY")
        if not spy or not bridge.pid:
            return
        for name, pid in (("bridge", bridge.pid), ("keeper", self.keepers[-1].pid)):
            out = self.work / f"restart-{name}.spy"
            sampler = spawn([spy, "record", "--pid", str(pid), "-r", "250", "-d", "40", "-f", "raw", "-o", str(out)],
                            log_path=self.work / f"spy-{name}.log")
            self.closing.append(lambda sampler=sampler: asyncio.to_thread(terminate, sampler, 60))
            log(f"py-spy samples the {name} into {out}")

    async def stop_all(self) -> None:
        for close in reversed(self.closing):
            with contextlib.suppress(Exception):
                await close()
        for bridge in self.bridges:
            with contextlib.suppress(Exception):
                await bridge.stop()
        for keeper in self.keepers:
            with contextlib.suppress(Exception):
                terminate(keeper, 10)
        for server in (self.synapse, self.redis, self.ngircd):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(server.stop)
        if self.slot is not None:
            self.slot.release()
        if os.environ.get("BENCH_KEEP"):
            log(f"scratch kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- the run -----------------------------------------------------------------------------

    async def seed(self, users: int) -> None:
        """What an earlier bridge run leaves in the keeper: ``users`` virtual-user connections of
        Matrix users, each in one portal's channel, opened with the specs the bridge makes
        (``KeptNetwork.link``: 20 fallback nicks, the section's pacing and keepalive). This process
        plays that earlier bridge: a ``KeeperClient`` that reads and acknowledges the inbound stream."""
        client = KeeperClient(Redis.from_url(self.redis.url, decode_responses=True), NETWORK, "main")
        await client.start()
        last: list[str | None] = [None]

        async def ignore(_conn: str, _event: Any) -> None:
            return None

        async def read_last() -> str | None:
            return last[0]

        async def write_last(entry: str) -> None:
            last[0] = entry

        listening = asyncio.create_task(client.listen(ignore, (read_last, write_last)))
        links = []
        for n in range(users):
            owner = f"@{self.load.localpart_prefix}s{n}:{self.load.server_name}"
            nick = f"s{n}[m]"
            spec = p.ConnectionSpec(
                p.connection_id(NETWORK, owner), NETWORK, "127.0.0.1", self.ngircd.port, False, nick, ident_for(owner),
                owner, next_nicks=tuple(f"s{n}_{k}[m]" for k in range(1, NEXT_NICKS + 1)), lines_per_second=1.0,
                burst=5, keepalive=60.0, members=False)
            links.append(KeptLink(client, spec, persist=True, timeout=900))
        await asyncio.gather(*(link.connect() for link in links))
        for n, link in enumerate(links):
            link.send(join(f"#c{n % self.portals}"))
        await wait_until("the seeded connections' JOINs", lambda: self.joined() >= users, users / 20 + 120)
        listening.cancel()
        await client.stop()

    def joined(self) -> int:
        """Distinct nicks (other than the observer's and the speaker's) seen joining the channels."""
        observer = self.observer
        assert observer is not None
        return len({line.source for line in observer.received
                    if line.command == "JOIN" and line.source not in ("observer", "speaker")})

    async def backlog(self) -> int:
        """Inbound entries the bridge has not read yet, or read and not acknowledged."""
        redis = Redis.from_url(self.redis.url, decode_responses=True)
        try:
            groups = await redis.xinfo_groups(p.inbound_stream(NETWORK))
            group = next(g for g in groups if g["name"] == p.BRIDGE_GROUP)
            return int(group.get("lag") or 0) + int(group.get("pending") or 0)
        finally:
            await redis.aclose()

    async def run(self) -> None:
        self.row("open files limit (soft = hard, inherited)", str(raise_file_limit()))
        log("starting ngIRCd, Redis, Synapse")
        await self.start_servers()
        slot = self.slot
        assert slot is not None
        channels = [f"#c{n}" for n in range(self.portals)]
        self.observer = observer = await IrcTestClient.connect("127.0.0.1", self.ngircd.port, "observer", timeout=60)
        speaker = await IrcTestClient.connect("127.0.0.1", self.ngircd.port, "speaker", timeout=60)
        self.closing += [observer.close, speaker.close]
        for channel in channels:
            await observer.join(channel)
        await speaker.join(channels[0])
        self.start_keeper()
        first = await self.start_bridge()
        await first.wait_ready(120)
        await asyncio.sleep(3)
        idle = {"bridge": rss_kb(first.pid or 0), "keeper": rss_kb(self.keepers[0].pid),
                "redis": rss_kb(self.redis.pid or 0)}
        await first.stop()  # the bot's connection stays in the keeper

        # 1. connections: seeded (an earlier bridge run's), then adopted by a new bridge; and
        #    Matrix users joining portals through Synapse
        seeded = self.users - self.matrix_users
        log(f"seeding {seeded} connections in the keeper")
        began = time.monotonic()
        await self.seed(seeded)
        took = time.monotonic() - began
        self.row(f"{seeded} connections opened in the keeper and joined", f"{took:.0f} s ({seeded / took:.0f}/s; "
                 f"keeper paced at {self.rate:.0f}/s)")
        began = time.monotonic()
        bridge = await self.start_bridge()
        await bridge.wait_ready(300)
        self.row(f"bridge started, {seeded} connections adopted", f"ready {time.monotonic() - began:.1f} s after start")
        watcher = await MatrixTestClient.create_user(self.synapse, "watcher", timeline_limit=50)
        self.closing.append(watcher.aclose)
        rooms = [await watcher.join(slot.alias(channel)) for channel in channels]
        users = AsUsers(self.synapse.url, self.load)
        self.closing.append(users.aclose)
        gate = asyncio.Semaphore(ENROL_CONCURRENCY)

        async def enrol(n: int) -> None:
            async with gate:
                user_id = await users.register(f"{self.load.localpart_prefix}u{n}")
                await users.join(user_id, rooms[n % self.portals])

        began = time.monotonic()
        await asyncio.gather(*(enrol(n) for n in range(self.matrix_users)))
        expected = self.users + 2  # N users, the watcher, the bot
        await wait_until("every user's connection in its channel", lambda: self.joined() >= expected, 600)
        took = time.monotonic() - began
        self.row(f"{self.matrix_users} Matrix users joined portals through Synapse", f"{took:.0f} s until all "
                 f"{self.matrix_users} connections were in their channels ({self.matrix_users / took:.1f}/s)")
        caught = await self.wait_caught_up(600)
        self.row("bridge: inbound stream read and acknowledged", f"{caught:.0f} s later")
        await asyncio.sleep(5)

        # 2. memory
        now = {"bridge": rss_kb(bridge.pid or 0), "keeper": rss_kb(self.keepers[0].pid),
               "redis": rss_kb(self.redis.pid or 0)}
        for name in ("bridge", "keeper", "redis"):
            self.row(f"RSS {name}", f"{now[name] / 1024:.0f} MB (idle {idle[name] / 1024:.0f} MB): "
                     f"{(now[name] - idle[name]) / self.users:.1f} KB per connection")
        total = sum(now.values())
        self.row("RSS bridge + keeper + Redis", f"{total / 1024:.0f} MB ({'within' if total <= 512 * 1024 else 'OVER'}"
                 f" 512 MB); {(total - sum(idle.values())) / self.users:.1f} KB per connection over idle")

        # 3. bridge SIGKILL and start: no QUIT, and the first line bridged
        self.row("IRC server's answer to a PING before the kill", f"{await self.ping_time(speaker):.2f} s")
        since = observer.mark()
        await bridge.kill()
        said_at = time.time()
        await speaker.privmsg(channels[0], SAID)

        async def observed() -> float:
            await observer.wait_for(lambda line: line.text == SAID, 600, since=since)
            return time.time()

        heard = asyncio.create_task(observed())
        began, started_at = time.monotonic(), time.time()
        restarted = await self.start_bridge()
        self.spy_on(restarted)
        await watcher.wait_for_event(rooms[0], lambda e: SAID in str(e.get("content", {}).get("body", "")),
                                     timeout=600)
        self.row("bridge SIGKILL, started again: the line said meanwhile in the portal",
                 f"{time.monotonic() - began:.1f} s after the new process started (at most 5 s asked)")
        published_at = await self.published_at(SAID)
        self.row("  that line: said -> at an IRC observer -> on the keeper's stream (from the bridge's start)",
                 f"{await heard - said_at:+.1f} s -> {published_at - said_at:+.1f} s "
                 f"({published_at - started_at:+.1f} s)")
        await restarted.wait_ready(300)
        await asyncio.sleep(10)
        noticed = observer.lines(comings_and_goings(observer, speaker.nick), since=since)
        self.row("bridge restart: QUIT/PART/JOIN/NICK seen on IRC", f"{len(noticed)} (in the {self.portals} channels)")

        # (after the restart: the 1,000 connections it opens and drops keep ngIRCd busy for seconds)
        baseline = await asyncio.to_thread(baseline_per_connection_kb, self.ngircd.port, min(self.users, 1000))
        self.row("today: IrcLink held in the bridge process", f"{baseline:.1f} KB per connection (1,000, no keeper)")

        # 4. keeper SIGKILL
        self.keepers[0].kill()
        self.keepers[0].wait()
        began = time.monotonic()
        keeper_log = self.start_keeper()
        took = await wait_until("the keeper's connections again", lambda: count_connected(keeper_log) >= expected,
                                deadline_s=self.users / self.rate * 4 + 300)
        self.row(f"keeper SIGKILL: all {expected} connected again", f"{took:.0f} s at a configured "
                 f"{self.rate:.0f}/s ({expected / took:.0f}/s achieved)")
        left = await self.backlog()
        await asyncio.sleep(20)
        later = await self.backlog()
        self.row("bridge: inbound entries the reconnects left it to read",
                 f"{left}, {later} 20 s later ({'-' if later <= left else '+'}{abs(left - later) / 20:.0f}/s)")

    async def ping_time(self, client: IrcTestClient) -> float:
        """How long the IRC server takes to answer a PING now (a busy ngIRCd delays every line)."""
        token = secrets.token_hex(4)
        since = client.mark()
        began = time.monotonic()
        client.send_raw(f"PING :{token}")
        await client.wait_for(lambda line: line.command == "PONG" and token in line.raw, 120, since=since)
        return time.monotonic() - began

    async def published_at(self, text: str) -> float:
        """When the keeper appended the inbound entry carrying ``text`` (its stream ID's time)."""
        redis = Redis.from_url(self.redis.url, decode_responses=True)
        try:
            entries: list[tuple[str, dict[str, str]]] = await redis.xrevrange(  # type: ignore[assignment]
                p.inbound_stream(NETWORK), count=5000)
            for entry, fields in entries:
                if text in fields.get("args", ""):
                    return int(entry.partition("-")[0]) / 1000
            return float("nan")
        finally:
            await redis.aclose()

    async def wait_caught_up(self, deadline_s: float) -> float:
        began = time.monotonic()
        while await self.backlog() > 0:
            if time.monotonic() - began > deadline_s:
                raise TimeoutError(f"the bridge has {await self.backlog()} inbound entries left")
            await asyncio.sleep(1)
        return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--portals", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0, help="the keeper's connects per second")
    parser.add_argument("--matrix-users", type=int, default=100,
                        help="of --users, how many join their portal through Synapse (the rest are adopted)")
    args = parser.parse_args()
    bench = Bench(args.users, args.portals, args.rate, args.matrix_users)
    began = time.monotonic()
    try:
        asyncio.run(_run(bench))
    finally:
        width = max((len(what) for what, _ in bench.rows), default=10)
        print(f"\nbench/irc_scale.py --users {args.users} --portals {args.portals} --rate {args.rate:g} "
              f"--matrix-users {args.matrix_users} "
              f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - began:.0f} s, "
              f"load {os.getloadavg()[0]:.1f})")
        print(f"{'what':<{width}}  figure")
        for what, figure in bench.rows:
            print(f"{what:<{width}}  {figure}")


async def _run(bench: Bench) -> None:
    try:
        await bench.run()
    finally:
        await bench.stop_all()


if __name__ == "__main__":
    main()
