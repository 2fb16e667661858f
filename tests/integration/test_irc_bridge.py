"""The IRC bridge end to end: a real Synapse, a real `bridgekit run` with the IRC connector, a real
InspIRCd, and people on IRC using a plain IRC client. One story per test."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.irc_fixtures import MakeIrcClient
from tests.servers.bridge_process import BridgeProcess
from tests.servers.irc_client import IrcTestClient, Line
from tests.servers.ircd import InspIRCd
from tests.servers.matrix_test_client import MatrixTestClient
from tests.servers.synapse import AppserviceSlot
from tests.synapse_fixtures import MakeMatrixUser, RunBridge, SynapseHarness

pytestmark = pytest.mark.integration

Event = dict[str, Any]
StartIrc = Callable[..., Awaitable[BridgeProcess]]


@pytest.fixture
def channel() -> str:
    return f"#room{secrets.token_hex(3)}"


@pytest.fixture
def start_irc(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness
) -> StartIrc:
    async def start(**settings: Any) -> BridgeProcess:
        public = f"http://127.0.0.1:{slot.bridge_port}"
        return await run_bridge(
            slot, "irc",
            connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0,
                       "bot_nick": f"bridge{secrets.token_hex(2)}", **settings},
            permissions={synapse.server_name: "admin"},
            appservice={"public_url": public},
        )

    return start


def from_sender(sender: str, event_type: str = "m.room.message") -> Callable[[Event], bool]:
    return lambda e: e.get("sender") == sender and e.get("type") == event_type


def notice(bot: str, text: str) -> Callable[[Event], bool]:
    return lambda e: e.get("sender") == bot and text in e.get("content", {}).get("body", "")


async def portal(alice: MatrixTestClient, slot: AppserviceSlot, channel: str) -> str:
    """Alice joins the channel's alias: the bridge makes the portal and its bot joins the channel."""
    room_id = await alice.join(slot.alias(channel))
    await alice.wait_for_membership(room_id, alice.user_id)
    return room_id


def privmsg_from(nick: str, channel: str) -> Callable[[Line], bool]:
    return lambda line: line.command == "PRIVMSG" and line.target == channel and line.is_from(nick)


async def test_relay_mode_carries_a_conversation_both_ways(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=False)
    alice = await make_matrix_user("alice")
    bob: IrcTestClient = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)

    await alice.send_text(room_id, "hello from matrix")
    line = await bob.wait_for(lambda l: l.command == "PRIVMSG" and l.target == channel and "hello from matrix" in l.text)
    name = alice.user_id.split(":")[0].lstrip("@")
    assert line.text == f"<{name}> hello from matrix"

    await bob.privmsg(channel, "hello from irc")
    ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    event = await alice.wait_for_event(room_id, lambda e: from_sender(ghost)(e) and e["content"]["body"] == "hello from irc")
    assert event["content"]["msgtype"] == "m.text"
