"""The IRC bridge with a connection keeper, end to end: a real Synapse, a real `bridgekit run`, a
real keeper process (``python -m bridges.irc.keeper``), a real Redis and a real InspIRCd. The
bridge is killed and started again while people talk; IRC never sees it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.irc_fixtures import MakeIrcClient
from tests.keeper_fixtures import StartKeeper
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

Event = dict[str, Any]
LINES = 60
KILLS = 10


async def start_kept_bridge(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness, redis_url: str,
    **settings: Any,
) -> BridgeProcess:
    public = f"http://127.0.0.1:{slot.bridge_port}"
    return await run_bridge(
        slot, "irc",
        connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0,
                   "bot_nick": f"bridge{secrets.token_hex(2)}", "virtual_users": True,
                   "keeper": {"redis_url": redis_url}, **settings},
        permissions={synapse.server_name: "admin"},
        appservice={"public_url": public},
    )


def said(channel: str, containing: str) -> Any:
    return lambda line: line.command == "PRIVMSG" and line.target == channel and containing in line.text


def comings_and_goings(bob: IrcTestClient) -> Any:
    """What an IRC user notices of a bridge restart without a keeper: bridged users quitting,
    joining again, changing nick."""
    return lambda line: line.command in ("QUIT", "JOIN", "PART", "NICK") and not line.is_from(bob.nick)


def from_ghost_with(ghost: str, containing: str) -> Any:
    return lambda e: (e.get("sender") == ghost and e.get("type") == "m.room.message"
                      and containing in e["content"].get("body", ""))


def keeper_gap_notice(bot: str) -> Any:
    return lambda e: (e.get("sender") == bot and e.get("content", {}).get("msgtype") == "m.notice"
                      and e["content"].get("body", "").startswith("The IRC connection keeper was offline from "))


async def test_ten_sigkills_of_the_bridge_lose_nothing_and_irc_sees_none(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness, redis_url: str,
    start_keeper: StartKeeper, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
) -> None:
    """60 lines each way; the bridge is SIGKILLed 10 times in the middle (2 lines each way said
    while it is down each time) and started again at once: every line arrives once, in order, and
    bob on IRC never sees alice or the bridge's bot quit, join or change nick; nor after a clean
    restart."""
    channel = f"#kept{secrets.token_hex(3)}"
    keeper = start_keeper(redis_url)
    process = await start_kept_bridge(slot, run_bridge, inspircd, synapse, redis_url)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)
    room_id = await alice.join(slot.alias(channel))
    await alice.wait_for_membership(room_id, alice.user_id)
    await alice.send_text(room_id, "warming up")  # alice's own connection joins the channel
    await bob.wait_for(said(channel, "warming up"), timeout=60)
    ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    before = bob.mark()

    for n in range(LINES):
        await alice.send_text(room_id, f"m2i {n:02d}")
        await bob.privmsg(channel, f"i2m {n:02d}")
        if n % 6 == 2:
            await process.kill()
        elif n % 6 == 4:  # two lines each way were said while the bridge was down
            await process.start_ready()

    to_irc = await bob.wait_for_count(said(channel, "m2i "), LINES, timeout=180, since=before)
    to_matrix = await alice.wait_for_events(room_id, from_ghost_with(ghost, "i2m "), LINES, timeout=180)
    expected = [f"{n:02d}" for n in range(LINES)]
    assert [line.text.rsplit(" ", 1)[1] for line in to_irc] == expected
    assert [e["content"]["body"].rsplit(" ", 1)[1] for e in to_matrix] == expected
    await alice.send_text(room_id, "and that is all")  # nothing else was still on its way
    await bob.wait_for(said(channel, "and that is all"), since=before)
    assert len(bob.lines(said(channel, "m2i "), since=before)) == LINES, "a line came twice"
    assert len([e for e in alice.events(room_id) if from_ghost_with(ghost, "i2m ")(e)]) == LINES
    # A clean stop (SIGTERM) leaves everyone connected too (persist_connections_on_shutdown).
    await process.restart(graceful=True)
    await alice.send_text(room_id, "after a clean restart")
    await bob.wait_for(said(channel, "after a clean restart"), since=before, timeout=60)
    await bob.privmsg(channel, "i2m after the clean restart")
    await alice.wait_for_event(room_id, from_ghost_with(ghost, "i2m after the clean restart"), timeout=60)
    assert bob.lines(comings_and_goings(bob), since=before) == []
    assert process.running
    keeper_log = keeper.log()
    assert keeper_log.count(": connected as ") == 2, keeper_log  # the bot's and alice's, once each



async def test_a_sigkilled_keeper_comes_back_and_sends_the_queued_lines_in_order(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness, redis_url: str,
    start_keeper: StartKeeper, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
) -> None:
    """alice's 12-line message goes out paced (a burst of 3, then 2 lines a second); the keeper is
    SIGKILLed once bob has seen 4, and started again: it connects the bot and alice again, joins
    their channel, and sends the rest, in order (at most the line in flight at the kill twice).
    The bridge keeps running throughout, and IRC -> Matrix works again afterwards; what bob said
    while the keeper was down was heard by nobody, and the portal is told so in one notice."""
    channel = f"#kept{secrets.token_hex(3)}"
    keeper = start_keeper(redis_url)
    await start_kept_bridge(slot, run_bridge, inspircd, synapse, redis_url, lines_per_second=2, burst=3,
                            max_lines=12)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)
    room_id = await alice.join(slot.alias(channel))
    await alice.wait_for_membership(room_id, alice.user_id)
    await alice.send_text(room_id, "warming up")
    await bob.wait_for(said(channel, "warming up"), timeout=60)
    expected = [f"line {n:02d} of 12" for n in range(1, 13)]

    await alice.send_text(room_id, "\n".join(expected))
    await bob.wait_for_count(said(channel, " of 12"), 4, timeout=30)
    keeper.kill()
    await bob.privmsg(channel, "said while the keeper was down")
    start_keeper(redis_url)

    await bob.wait_for(said(channel, "line 12 of 12"), timeout=90)
    got = [line.text for line in bob.lines(said(channel, " of 12"))]
    once_each = [text for index, text in enumerate(got) if index == 0 or text != got[index - 1]]
    assert once_each == expected, got
    assert len(got) - len(expected) <= 1, got  # only the line in flight at the kill may come twice
    ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    await bob.privmsg(channel, "still hearing me?")
    await alice.wait_for_event(room_id, from_ghost_with(ghost, "still hearing me?"), timeout=60)
    # What bob said in the gap nobody heard: the portal is told so, once.
    told = await alice.wait_for_event(room_id, keeper_gap_notice(slot.bot_user_id), timeout=60)
    assert told["content"]["body"].endswith(" UTC; messages from IRC in that time were not seen."), told
    assert len([e for e in alice.events(room_id) if keeper_gap_notice(slot.bot_user_id)(e)]) == 1
    assert not [e for e in alice.events(room_id) if from_ghost_with(ghost, "while the keeper was down")(e)]
