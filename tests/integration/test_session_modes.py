"""Session modes end to end: Synapse, a real `bridgekit run`, and chatnet (a real chat server on
loopback) with a person on it. The core routes each Matrix message through the identity the
routing rule picks: the relay bot (`<alice> hi`), or the user's own virtual identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.chatnet import ChatnetClient, ChatnetServer
from bridgekit.testing.matrix_steps import linked_portal as link_room
from bridgekit.testing.matrix_steps import notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

CHAT = "lobby"

StartBridge = Callable[..., Awaitable[AppserviceSlot]]


@pytest.fixture
def start_bridge(slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge) -> StartBridge:
    async def start(*, virtual: bool) -> AppserviceSlot:
        await run_bridge(
            slot, "tests.support.chatnet_connector:ChatnetConnector",
            connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": virtual},
            permissions={"localhost": "admin"},  # the test users may link rooms
        )
        return slot

    return start


async def linked_portal(alice: MatrixTestClient, slot: AppserviceSlot) -> str:
    return await link_room(alice, slot, CHAT, name="lobby on chatnet")


async def bob_on_chatnet(chatnet: ChatnetServer) -> ChatnetClient:
    bob = ChatnetClient("bob")
    await bob.connect(chatnet.host, chatnet.port)
    bob.join(CHAT)
    return bob


async def test_relay_mode_both_ways_and_a_visible_refusal_when_relay_is_off(
    start_bridge: StartBridge, chatnet: ChatnetServer, make_matrix_user: MakeMatrixUser
) -> None:
    slot = await start_bridge(virtual=False)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    bob = await bob_on_chatnet(chatnet)
    try:
        alice_name = alice.user_id.split(":")[0].lstrip("@")
        await alice.send_text(room_id, "hi bob")
        relayed = await chatnet.wait_for(CHAT, lambda m: m.text.endswith("hi bob"))
        assert (relayed.nick, relayed.text) == ("bridgebot", f"<{alice_name}> hi bob")

        await bob.say(CHAT, "hello alice")
        ghost = slot.ghost_user_id(f"{slot.connector}_bob")
        answer = await alice.wait_for_event(
            room_id, lambda e: e.get("sender") == ghost and e["type"] == "m.room.message"
        )
        assert answer["content"]["body"] == "hello alice"

        await alice.send_text(room_id, "!bk relay off")
        await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Relay off"))
        await alice.send_text(room_id, "anyone there?")
        refusal = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "was not bridged"))
        assert "login" in refusal["content"]["body"]
        assert not [m for m in chatnet.messages if "anyone there" in m.text]
        # The network's echo of the relayed line never came back into the room.
        bodies = [e["content"].get("body") for e in await alice.room_messages(room_id) if e["type"] == "m.room.message"]
        assert bodies.count("hi bob") == 1
        assert not [b for b in bodies if b and b.startswith("<")]
    finally:
        await bob.close()


async def test_virtual_user_mode_gives_each_matrix_user_their_own_identity(
    start_bridge: StartBridge, chatnet: ChatnetServer, make_matrix_user: MakeMatrixUser
) -> None:
    slot = await start_bridge(virtual=True)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    bob = await bob_on_chatnet(chatnet)
    try:
        alice_name = alice.user_id.split(":")[0].lstrip("@")
        await alice.send_text(room_id, "hi bob, it is really me")
        said = await chatnet.wait_for(CHAT, lambda m: m.text == "hi bob, it is really me")
        assert said.nick == f"{alice_name}[m]"  # her own identity, no relay template

        await bob.say(CHAT, "nice to meet you")
        ghost = slot.ghost_user_id(f"{slot.connector}_bob")
        await alice.wait_for_event(room_id, lambda e: e.get("sender") == ghost and e["type"] == "m.room.message")
        bodies = [e["content"].get("body") for e in await alice.room_messages(room_id) if e["type"] == "m.room.message"]
        assert bodies.count("hi bob, it is really me") == 1  # her identity's echo was not bridged back
    finally:
        await bob.close()


async def test_an_upgraded_portal_room_keeps_bridging_in_its_successor(
    start_bridge: StartBridge, chatnet: ChatnetServer, make_matrix_user: MakeMatrixUser
) -> None:
    slot = await start_bridge(virtual=False)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    bob = await bob_on_chatnet(chatnet)
    try:
        # Public, so the bot may join the successor without an invite (the upgrade copies that).
        await alice.send_state(room_id, "m.room.join_rules", {"join_rule": "public"})
        upgraded = await alice.request(
            "POST", f"/_matrix/client/v3/rooms/{room_id}/upgrade", json_body={"new_version": "10"}
        )
        new_room: str = upgraded["replacement_room"]
        await alice.wait_for_membership(new_room, slot.bot_user_id)
        await bob.say(CHAT, "still here after the upgrade?")
        ghost = slot.ghost_user_id(f"{slot.connector}_bob")
        moved = await alice.wait_for_event(
            new_room, lambda e: e.get("sender") == ghost and e["type"] == "m.room.message"
        )
        assert moved["content"]["body"] == "still here after the upgrade?"
        await alice.send_text(new_room, "yes, in the new room")
        await chatnet.wait_for(CHAT, lambda m: m.text.endswith("yes, in the new room"))
    finally:
        await bob.close()
