"""Without a connection keeper, a bridge that was down tells each portal once what it missed:
"the bridge was offline from <date> HH:MM to HH:MM UTC; messages from IRC in that time were not
seen". The downtime is made by editing the stored heartbeat while the bridge is stopped (an input,
not a wait): real Synapse, real InspIRCd, a real ``bridgekit run``."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from bridgekit.testing.matrix_steps import notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser
from tests.integration import test_irc_bridge as stories
from tests.integration.test_irc_bridge import StartIrc, body_is, ghost_of, portal
from tests.irc_fixtures import MakeIrcClient

pytestmark = pytest.mark.integration

start_irc = stories.start_irc

NOT_SEEN = "messages from IRC in that time were not seen"


async def test_after_downtime_each_portal_is_told_once_what_was_not_seen(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
) -> None:
    channel = f"#down{secrets.token_hex(3)}"
    process = await start_irc(virtual_users=False)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)

    await process.stop()
    went_down = time.time() - 300  # as if the bridge had stopped five minutes ago
    with sqlite3.connect(process.config_path.with_suffix(".db")) as db:
        changed = db.execute("UPDATE kv SET value = ? WHERE network = ? AND key = 'alive_at'",
                             (json.dumps(went_down), slot.connector)).rowcount
    assert changed == 1  # the clean stop recorded the last heartbeat
    await process.start_ready()

    told = await alice.wait_for_event(room_id, notice(slot.bot_user_id, NOT_SEEN), timeout=60)
    began = datetime.fromtimestamp(went_down, UTC)
    assert told["content"]["msgtype"] == "m.notice"
    assert told["content"]["body"].startswith(f"The bridge was offline from {began:%Y-%m-%d %H:%M} to ")
    assert told["content"]["body"].endswith(f" UTC; {NOT_SEEN}.")

    since = bob.mark()
    await process.restart()  # a quick restart: nothing to tell
    await bob.wait_for(lambda line: line.command == "JOIN" and (line.source or "").startswith("bridge"), timeout=60,
                       since=since)
    await bob.privmsg(channel, "after the quick restart")
    await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "after the quick restart"), timeout=60)
    assert len([e for e in alice.events(room_id) if notice(slot.bot_user_id, NOT_SEEN)(e)]) == 1
