"""The homeserver goes away for 30 s in the middle of a stream from IRC: the bridge keeps hearing
IRC, stores what it hears, and once Synapse is back posts every line, in order, once, each with
the time the IRC server gave it (IRCv3 server-time), not the time it reached Matrix.

Synapse is stopped by PID and started again on the same port and data: this test runs its own
homeserver, so the session's shared one never goes down under other tests (about 5 s more)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from bridgekit.testing.synapse_harness import RunBridge, running_synapse
from tests.integration.test_irc_bridge import ghost_of, said_in
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

BEFORE, DURING, AFTER = 10, 30, 10
OUTAGE_S = 30.0


def server_time_ms(line: Any) -> int:
    return int(datetime.fromisoformat(line.tags["time"].replace("Z", "+00:00")).timestamp() * 1000)


async def test_a_30_second_homeserver_outage_loses_nothing_from_irc(
    run_bridge: RunBridge, make_irc_client: MakeIrcClient, inspircd: InspIRCd, tmp_path: Path,
) -> None:
    channel = f"#hsdown{secrets.token_hex(3)}"
    async with running_synapse(tmp_path / "synapse") as synapse:
        slot = synapse.slot("main")
        bridge = await run_bridge(
            slot, "irc",
            connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "virtual_users": False,
                       "lines_per_second": 0, "bot_nick": f"bridge{secrets.token_hex(2)}"},
            permissions={synapse.server_name: "admin"},
        )
        alice = await synapse.create_user(f"alice_{secrets.token_hex(3)}")
        try:
            room_id = await alice.join(slot.alias(channel))
            bob = await make_irc_client("bob")
            watcher: IrcTestClient = await make_irc_client("watch", caps=["server-time"])
            await bob.join(channel)
            await watcher.join(channel)
            ghost = ghost_of(slot, bob.nick)
            texts = [f"stream {n:03d}" for n in range(BEFORE + DURING + AFTER)]

            for text in texts[:BEFORE]:
                await bob.privmsg(channel, text)
            await alice.wait_for_events(room_id, lambda e: e.get("sender") == ghost, BEFORE, timeout=60)

            synapse.server.stop(release_port=False)  # by PID
            for text in texts[BEFORE:BEFORE + DURING]:
                await bob.privmsg(channel, text)
                await asyncio.sleep(OUTAGE_S / DURING)  # the outage's length is the input here
            synapse.server.start()
            for text in texts[BEFORE + DURING:]:
                await bob.privmsg(channel, text)

            said = await watcher.wait_for_count(said_in(channel, "stream "), len(texts), timeout=30)
            events = await alice.wait_for_events(
                room_id, lambda e: e.get("sender") == ghost and e.get("type") == "m.room.message", len(texts),
                timeout=240,
            )
            assert [e["content"]["body"] for e in events] == texts  # all, in order, once
            assert [e["origin_server_ts"] for e in events] == [server_time_ms(line) for line in said]
            late = [e for e in alice.events(room_id) if e.get("sender") == ghost and e.get("type") == "m.room.message"]
            assert len(late) == len(texts)
        finally:
            await alice.aclose()
            await bridge.stop()  # before its homeserver goes
