"""The demo, start to end: start (or find running) a local Synapse, an IRC server and the bridge
with its IRC and webhook connectors; make the demo user, the portal of ``#demo`` and a webhook;
send one message each way and print what each side saw; then how to connect with your own
clients. ``--stop`` stops what it started, by the PIDs in the state directory."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bridgekit.demo.processes import bridgekit_command
from bridgekit.demo.roundtrips import RoundTrip, demo_hook, demo_portal, demo_user, prove
from bridgekit.demo.stack import DemoError, Stack
from bridgekit.demo.state import DEMO_USER, IRC_CHANNEL, DemoState


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@contextmanager
def _step(title: str) -> Iterator[Callable[[str], None]]:
    """``==> title ... outcome (1.2 s)``; the step sets its outcome through the callable."""
    _say(f"==> {title} ")
    outcome = ["done"]
    began = time.monotonic()
    yield lambda text: outcome.__setitem__(0, text)
    _say(f" {outcome[0]} ({time.monotonic() - began:.1f} s)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path(".demo"),
                        help="where the demo keeps its config, data, logs and PIDs [.demo]")
    parser.add_argument("--stop", action="store_true", help="stop everything the demo started")
    args = parser.parse_args(argv)
    state_file = args.state_dir / "state.json"
    try:
        if args.stop:
            return _stop(args.state_dir, state_file)
        return _start(args.state_dir, state_file)
    except DemoError as error:
        _say(f"\nThe demo stopped: {error}\n")
        return 1


def _stop(state_dir: Path, state_file: Path) -> int:
    state = DemoState.load(state_file)
    if state is None:
        _say(f"Nothing to stop: no demo state in {state_dir}\n")
        return 0
    stack = Stack(state_dir, state, _say)
    try:
        for line in stack.stop_all() or ["nothing was running"]:
            _say(f"{line}\n")
    finally:
        state.save(state_file)
    return 0


def _start(state_dir: Path, state_file: Path) -> int:
    began = time.monotonic()
    state = DemoState.load(state_file) or DemoState.new()
    stack = Stack(state_dir, state, _say)
    _say(f"bridgekit demo: a local Synapse, an IRC server and the bridge (state in {stack.dir})\n")
    try:
        _start_processes(stack)
        trips = asyncio.run(_matrix_side(state, state_file))
    finally:
        state.save(state_file)
    _say("\nProof, one message each way:\n")
    for trip in trips:
        _say(f"  {trip.name}: OK\n    sent: {trip.sent}\n    {trip.seen}\n")
    _say(f"\nAll three round trips worked ({time.monotonic() - began:.0f} s in all).\n")
    _print_how_to_connect(stack)
    return 0


def _start_processes(stack: Stack) -> None:
    bridgekit = bridgekit_command()
    s, ports = stack.state, stack.state.ports
    _start_or_reuse(stack, "ircd", "IRC server", stack.start_ircd, lambda: f"{s.ircd} on 127.0.0.1:{ports.irc}")
    with _step("bridge config and registration") as outcome:
        stack.write_bridge_files(bridgekit)
        outcome(f"written to {stack.bridge_dir}")
    _start_or_reuse(stack, "synapse", "Synapse", stack.start_synapse, lambda: f"on {s.homeserver_url}")
    _start_or_reuse(stack, "bridge", "bridge, with the IRC and webhook connectors",
                    lambda: stack.start_bridge(bridgekit),
                    lambda: f"on 127.0.0.1:{ports.bridge} (homeserver) and :{ports.public} (webhooks)")


def _start_or_reuse(stack: Stack, name: str, title: str, start: Callable[[], None], where: Callable[[], str]) -> None:
    """One of the three processes: found running (by the PID recorded), else started."""
    with _step(title) as outcome:
        if (pid := stack.running_pid(name)) is not None:
            outcome(f"already running (PID {pid}) {where()}")
        else:
            start()
            outcome(f"started {where()}")


async def _matrix_side(state: DemoState, state_file: Path) -> list[RoundTrip]:
    with _step("demo Matrix user") as outcome:
        user, how = await demo_user(state)
        state.save(state_file)
        outcome(f"{user.user_id} {how}")
    try:
        with _step(f"portal of IRC {IRC_CHANNEL}") as outcome:
            found = bool(state.room_id)
            room_id = await demo_portal(user, state)
            state.save(state_file)
            outcome(f"{room_id} {'already linked' if found else 'linked'}")
        with _step("webhook into the portal") as outcome:
            found = bool(state.hook_url)
            await demo_hook(user, state)
            state.save(state_file)
            outcome("already made" if found else "made")
        with _step("sending one message each way") as outcome:
            trips = await prove(user, state)
            outcome("all three arrived")
    finally:
        await user.aclose()
    return trips


def _print_how_to_connect(stack: Stack) -> None:
    s = stack.state
    d = stack.dir
    _say(f"""
Connect with your own clients:
  Matrix (Element desktop, nheko): homeserver {s.homeserver_url}
      user {DEMO_USER}, password {s.password}; the room "{IRC_CHANNEL} (IRC)" is the portal
  IRC (irssi, weechat): server 127.0.0.1, port {s.ports.irc}, no TLS, channel {IRC_CHANNEL}
      irssi:   /connect 127.0.0.1 {s.ports.irc}   then  /join {IRC_CHANNEL}
      weechat: /server add demo 127.0.0.1/{s.ports.irc} -notls   then  /connect demo  and  /join {IRC_CHANNEL}
  Webhook:
      curl -H 'Content-Type: application/json' -d '{{"text": "hi from curl", "username": "me"}}' \\
        {s.hook_url}

Logs: {d / 'synapse' / 'homeserver.log'}, {d / 'ircd'}, {d / 'bridge' / 'bridge.log'}
It keeps running. Stop it: ./scripts/demo --stop    (start again: ./scripts/demo; afresh: rm -rf {d})
""")
