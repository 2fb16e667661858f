"""Idle footprint of ``bridgekit run`` with one IRC network: resident memory and start-up.

    .venv/bin/python bench/idle.py [--rounds N] [--importtime] [--env NAME=VALUE] [--keep]

Starts one Synapse and one InspIRCd (the test servers, ``tests/servers``), then, per round, a fresh
``bridgekit run`` with one IRC network (the shipped settings, ``virtual_users: true``, as in
``bench/irc.py``'s defaults row) and its own SQLite database, and reports:

- ``ready``: spawn -> ``/health/ready`` answers 200 (transactions are accepted from then on);
- ``connected``: VmRSS 3 s after the bridge's bot is on IRC (``ISON``), no portal, no traffic;
- ``warm``: VmRSS 2 s after one message each way through a new portal (what ``bench/irc.py``
  calls idle: virtual-user connection, ghost and joins made).

The median over the rounds is printed beside each round (issue 16's goal: ``warm`` <= 75 MB).
``--importtime`` runs the bridge with ``PYTHONPROFILEIMPORTTIME=1`` and prints the top-level
packages it had imported by the end and the heaviest imports (cumulative); start-up is then slower
than real, so it is not a start-up figure. Every process is stopped by PID; the scratch directory
``.bench/idle-*`` is removed unless ``--keep``. ``--bridgekit .venv-runtime/bin/bridgekit`` measures the
runtime install (``scripts/setup runtime``: no test toolchain, whose packages some libraries import
when present), which is what a deployment runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path and bench/irc.py would shadow the `irc` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.irc_peer import child_pids, rss_bytes  # noqa: E402
from bench.irc_settings import DEFAULTS, bridgekit_section  # noqa: E402
from bridgekit.demo.irc_client import IrcTestClient  # noqa: E402
from bridgekit.demo.matrix_client import MatrixTestClient  # noqa: E402
from bridgekit.testing.bridge_process import BridgeProcess  # noqa: E402
from bridgekit.testing.synapse import AppserviceSlot, SynapseServer  # noqa: E402
from tests.servers.ircd import InspIRCd  # noqa: E402

MB = 2**20


@dataclass
class Round:
    ready_s: float
    connected_mb: float
    warm_mb: float
    split: str
    log_path: Path


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def wait_online(client: IrcTestClient, nick: str, timeout: float) -> None:  # noqa: ASYNC109
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        since = client.mark()
        client.send_raw(f"ISON {nick}")
        answer = await client.wait_for(lambda ln: ln.command == "303", 10, since=since)
        if nick.casefold() in answer.text.casefold().split():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{nick} not on IRC after {timeout} s")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        scratch = _REPO / ".bench"
        scratch.mkdir(exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="idle-", dir=scratch))
        self.synapse = SynapseServer(self.work / "synapse")
        self.inspircd = InspIRCd(self.work / "inspircd")
        self.slot: AppserviceSlot | None = None

    async def start_servers(self) -> None:
        self.synapse.write_config()
        self.slot = AppserviceSlot("idle", appservice_id=f"bench-idle-{secrets.token_hex(3)}", prefix="_bk_",
                                   homeserver_url=self.synapse.url, server_name=self.synapse.server_name,
                                   connector="irc")
        self.synapse.appservice_registrations = [self.slot.write_registration(self.work / "registration.yaml")]
        log("starting Synapse and InspIRCd")
        await asyncio.to_thread(self.synapse.start)
        await asyncio.to_thread(self.inspircd.start)

    async def stop_servers(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.inspircd.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.synapse.stop)
        if self.slot is not None:
            self.slot.release()
        if self.args.keep:
            log(f"scratch kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    async def one_round(self, number: int) -> Round:
        slot = self.slot
        assert slot is not None
        bot_nick = f"bk{secrets.token_hex(3)}"
        name = f"round{number}"
        config = slot.write_bridge_config(
            self.work / f"{name}.yaml", f"sqlite+aiosqlite:///{self.work / f'{name}.db'}",
            connectors={"irc": bridgekit_section(DEFAULTS, self.inspircd.port, bot_nick)},
            permissions={self.synapse.server_name: "admin"},
            appservice={"public_url": slot.bridge_url}, logging={"level": "WARNING", "access_log": False},
        )
        env = {"PYTHONPATH": str(_REPO), **dict(item.split("=", 1) for item in self.args.env)}
        if self.args.importtime:
            env["PYTHONPROFILEIMPORTTIME"] = "1"
        argv = [str(self.args.bridgekit), "run", "-c", str(config)] if self.args.bridgekit else None
        bridge = BridgeProcess(config, env=env, argv=argv)
        watcher = await IrcTestClient.connect("127.0.0.1", self.inspircd.port, f"w{secrets.token_hex(3)}", timeout=60)
        alice: MatrixTestClient | None = None
        try:
            spawned = time.monotonic()
            await bridge.start_ready(60)
            ready_s = time.monotonic() - spawned
            assert bridge.pid is not None
            await wait_online(watcher, bot_nick, 60)
            await asyncio.sleep(3.0)
            connected = rss_bytes(bridge.pid)
            alice = await MatrixTestClient.create_user(self.synapse, f"alice_{secrets.token_hex(3)}")
            channel = f"#idle{secrets.token_hex(3)}"
            await watcher.join(channel)
            room_id = await alice.join(slot.alias(channel))
            await alice.wait_for_membership(room_id, alice.user_id)
            since = watcher.mark()
            await alice.send_text(room_id, "warm-up from matrix")
            await watcher.wait_for(lambda ln: ln.command == "PRIVMSG" and "warm-up from matrix" in ln.text, 60,
                                   since=since)
            await watcher.privmsg(channel, "warm-up from irc")
            await alice.wait_for_event(
                room_id, lambda e: "warm-up from irc" in str(e.get("content", {}).get("body", "")), timeout=60)
            await asyncio.sleep(2.0)
            warm = rss_bytes(bridge.pid)
            split = rss_split(bridge.pid)
            if self.args.hold:
                log(f"holding PID {bridge.pid} for {self.args.hold:g} s")
                await asyncio.sleep(self.args.hold)
        finally:
            if alice is not None:
                await alice.aclose()
            await watcher.close()
            await bridge.stop()
        return Round(ready_s, connected / MB, warm / MB, split, bridge.log_path)


def rss_split(pid: int) -> str:
    """The bridge's own resident memory by kind (heap and other anonymous pages, mapped files such as
    shared libraries), and its thread and child count, for the report."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    children = len(child_pids(pid))
    anon, mapped = (int(fields[name].split()[0]) / 1024 for name in ("RssAnon", "RssFile"))
    return f"anon {anon:.1f} MB, file {mapped:.1f} MB, {fields['Threads'].strip()} threads, {children} children"


def print_imports(log_path: Path) -> None:
    """Top-level packages the bridge imported (from its import-time profile) and the heaviest."""
    rows: list[tuple[int, str]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative_us), name.strip()))
    tops = sorted({name.split(".")[0] for _, name in rows})
    print(f"\n{len(rows)} modules imported; top-level packages ({len(tops)}):\n  " + " ".join(tops))
    print("\nheaviest top-level imports (cumulative ms, as the profile saw them; a package imported twice at"
          " different depths is listed where it was first loaded):")
    top_level = [(us, name) for us, name in rows if "." not in name]
    for us, name in sorted(top_level, reverse=True)[:25]:
        print(f"  {us / 1000:8.1f}  {name}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--importtime", action="store_true", help="profile the bridge's imports (slower start-up)")
    parser.add_argument("--bridgekit", type=Path, help="the bridgekit command to run (default: this venv's); "
                        ".venv-runtime/bin/bridgekit (scripts/setup runtime) is what a deployment installs")
    parser.add_argument("--hold", type=float, default=0.0, help="keep each bridge running this long after"
                        " measuring (seconds), to inspect it")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set this in the bridge's environment (repeatable), e.g. PYTHONOPTIMIZE=2")
    parser.add_argument("--keep", action="store_true", help="keep .bench/idle-* (configs, logs, databases)")
    args = parser.parse_args()
    bench = Bench(args)
    rounds: list[Round] = []
    try:
        await bench.start_servers()
        for number in range(1, args.rounds + 1):
            result = await bench.one_round(number)
            rounds.append(result)
            log(f"round {number}: ready {result.ready_s:.2f} s, connected {result.connected_mb:.1f} MB, "
                f"warm {result.warm_mb:.1f} MB ({result.split})")
        if args.importtime and rounds:
            print_imports(rounds[-1].log_path)
    finally:
        await bench.stop_servers()
    if rounds:
        print(f"\nmedian of {len(rounds)}: ready {statistics.median(r.ready_s for r in rounds):.2f} s, "
              f"connected {statistics.median(r.connected_mb for r in rounds):.1f} MB, "
              f"warm {statistics.median(r.warm_mb for r in rounds):.1f} MB"
              f" (range {min(r.warm_mb for r in rounds):.1f}-{max(r.warm_mb for r in rounds):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
