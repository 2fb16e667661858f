"""Many IRC connections through a connection keeper: memory, and how fast they come back.

    .venv/bin/python bench/irc_scale.py [--users 2000] [--channels 100] [--rate 200]

A first, smaller version of the issue's benchmark, without Synapse: ngIRCd (limits off), a real
Redis and a real keeper process (``python -m bridges.irc.keeper``); this process plays the
bridge's side (a ``KeeperClient`` and one ``KeptLink`` per virtual user, the objects the bridge
holds). It measures:

1. opening N virtual-user connections through the keeper, each joining one of ``--channels``
   channels (paced at ``--rate`` connections a second by the keeper);
2. RSS of the keeper, of Redis and of the bridge side, per connection, next to connections held
   in-process as today (``IrcLink``, measured in a child process: RSS growth per connection);
3. a keeper SIGKILL: the time until all N are connected again (at ``--rate``);
4. a bridge restart: a new bridge side asks for the live connections (adoption, no IRC traffic)
   and hears a line said in a channel: the time from its start to that line.

Everything binds 127.0.0.1 and is stopped by PID; temporary files live under ``.bench/scale-*``.
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

_REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import irc.client  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from bridgekit.demo.irc_client import IrcTestClient  # noqa: E402
from bridgekit.demo.processes import spawn, terminate  # noqa: E402
from bridges.irc.keeper import protocol as p  # noqa: E402
from bridges.irc.keeper.client import KeeperClient  # noqa: E402
from bridges.irc.keeper.kept_link import KeptLink  # noqa: E402
from bridges.irc.lines import join  # noqa: E402
from tests.servers.ircd import NgIRCd  # noqa: E402
from tests.servers.redis_server import RedisServer  # noqa: E402

NETWORK = "scale"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (keeper, servers) inherit it
    return hard


async def open_all(client: KeeperClient, port: int, users: int, channels: int) -> list[KeptLink]:
    links = []
    for n in range(users):
        spec = p.ConnectionSpec(p.connection_id(NETWORK, f"@u{n}:bench"), NETWORK, "127.0.0.1", port, False,
                                f"u{n}x{secrets.token_hex(2)}", f"u{n}", "bench", lines_per_second=0, keepalive=0)
        links.append(KeptLink(client, spec, persist=True, timeout=600))
    await asyncio.gather(*(link.connect() for link in links))
    for n, link in enumerate(links):
        link.send(join(f"#c{n % channels}"))
    return links


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
    for chunk in range(1, {count}, 50):
        await asyncio.gather(*(link.connect(timeout=120) for link in links[chunk:chunk + 50]))
    print((rss_kb(os.getpid()) - before) / ({count} - 1))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the in-process baseline failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def count_connected(log: Path) -> int:
    return log.read_text(errors="replace").count(": connected as ") if log.exists() else 0


async def wait_connected(log: Path, target: int, deadline_s: float) -> float:
    began = time.monotonic()
    while count_connected(log) < target:
        if time.monotonic() - began > deadline_s:
            raise TimeoutError(f"{count_connected(log)}/{target} connected after {deadline_s} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def run(users: int, channels: int, rate: float) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=_REPO / ".bench" if (_REPO / ".bench").exists() else None))
    rows.append(("open files limit", str(raise_file_limit())))
    ngircd, redis_server = NgIRCd(work / "ngircd"), RedisServer(work / "redis")
    keeper_procs: list[subprocess.Popen[bytes]] = []
    try:
        await asyncio.to_thread(ngircd.start)
        await asyncio.to_thread(redis_server.start)
        argv = [sys.executable, "-m", "bridges.irc.keeper", "--redis-url", redis_server.url,
                "--connects-per-second", str(rate)]
        keeper_procs.append(spawn(argv, log_path=work / "keeper-1.log"))
        client = KeeperClient(Redis.from_url(redis_server.url, decode_responses=True), NETWORK, "main")
        await client.start()
        await client.command("list", "", {"network": NETWORK})  # the keeper is up and reading
        heard = asyncio.Event()
        last: list[str | None] = [None]

        async def handler(_conn: str, event: irc.client.Event) -> None:
            if event.type == "pubmsg" and event.arguments and event.arguments[0] == "first after restart":
                heard.set()

        async def read_last() -> str | None:
            return last[0]

        async def write_last(entry: str) -> None:
            last[0] = entry

        listening = asyncio.create_task(client.listen(handler, (read_last, write_last)))  # the bridge, running
        keeper_idle, bridge_idle = rss_kb(keeper_procs[0].pid), rss_kb(os.getpid())

        began = time.monotonic()
        links = await open_all(client, ngircd.port, users, channels)
        rows.append((f"open {users} connections at {rate:.0f}/s", f"{time.monotonic() - began:.1f} s"))
        await asyncio.sleep(2)  # the JOINs land
        keeper_kb, redis_kb = rss_kb(keeper_procs[0].pid), rss_kb(redis_server.pid or 0)
        bridge_kb = rss_kb(os.getpid())
        rows += [
            ("RSS keeper", f"{keeper_kb / 1024:.0f} MB, idle {keeper_idle / 1024:.0f} MB: "
                           f"{(keeper_kb - keeper_idle) / users:.1f} KB per connection"),
            ("RSS Redis", f"{redis_kb / 1024:.0f} MB"),
            ("RSS bridge side (KeptLinks, no core)", f"{bridge_kb / 1024:.0f} MB, before {bridge_idle / 1024:.0f} MB: "
                                                     f"{(bridge_kb - bridge_idle) / users:.1f} KB per connection"),
            ("total keeper + Redis + bridge side", f"{(keeper_kb + redis_kb + bridge_kb) / 1024:.0f} MB"),
        ]
        baseline = await asyncio.to_thread(baseline_per_connection_kb, ngircd.port, min(users, 1000))
        rows.append(("today: IrcLink in the bridge process", f"{baseline:.1f} KB per connection"))

        keeper_procs[0].kill()
        keeper_procs[0].wait()
        began = time.monotonic()
        keeper_procs.append(spawn(argv, log_path=work / "keeper-2.log"))
        took = await wait_connected(work / "keeper-2.log", users, deadline_s=users / rate * 3 + 60)
        rows.append((f"keeper SIGKILL: all {users} connected again", f"{took:.1f} s (configured {rate:.0f}/s)"))

        await asyncio.sleep(2)  # the running bridge side has read what the reconnects said
        listening.cancel()
        await client.stop()  # the bridge stops; the keeper holds on
        del links
        began = time.monotonic()
        fresh = KeeperClient(Redis.from_url(redis_server.url, decode_responses=True), NETWORK, "main")
        await fresh.start()
        listed = await fresh.command("list", "", {"network": NETWORK})
        adopted = len(listed.data.get("connections", {}))
        rows.append(("bridge restart: connections adopted", f"{adopted} in {time.monotonic() - began:.1f} s"))
        speaker = await IrcTestClient.connect("127.0.0.1", ngircd.port, f"sp{secrets.token_hex(3)}")
        await speaker.join("#c0")
        listening = asyncio.create_task(fresh.listen(handler, (read_last, write_last)))
        await speaker.privmsg("#c0", "first after restart")
        await asyncio.wait_for(heard.wait(), 120)
        rows.append(("bridge restart: first IRC line heard", f"{time.monotonic() - began:.1f} s after start"))
        listening.cancel()
        await speaker.close()
        await fresh.stop()
    finally:
        for proc in keeper_procs:
            with contextlib.suppress(Exception):
                terminate(proc, 10)
        redis_server.stop()
        ngircd.stop()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="keeper connects per second")
    args = parser.parse_args()
    rows = asyncio.run(run(args.users, args.channels, args.rate))
    width = max(len(what) for what, _ in rows)
    print(f"\n{'what':<{width}}  figure")
    for what, figure in rows:
        print(f"{what:<{width}}  {figure}")


if __name__ == "__main__":
    main()
