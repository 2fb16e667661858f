"""Room authority end to end: Synapse, a real `bridgekit run` and chatnet (a chat server on
loopback). Turning a portal's relay on or off needs the bridge's `user` level and the room's
admin power level: an ordinary member cannot silence everyone who relies on the relay."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridgekit.testing.chatnet import ChatnetServer
from bridgekit.testing.matrix_steps import linked_portal, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

CHAT = "lobby"


async def test_relay_off_needs_the_rooms_power_level_besides_the_bridge_level(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser,
) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user", alice.user_id: "admin"},  # alice links; bob is a plain user
    )
    room_id = await linked_portal(alice, slot, CHAT)
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    bot = slot.bot_user_id

    await bob.send_text(room_id, "!bk relay off")
    refusal = await bob.wait_for_event(room_id, notice(bot, "'relay' needs"))
    assert "power level 100 in this room (yours is 0)" in refusal["content"]["body"]
    assert "your bridge permission level ('user') is enough" in refusal["content"]["body"]
    # Relay stayed on: alice's message still reaches the chat through the bot.
    await alice.send_text(room_id, "still relayed")
    await chatnet.wait_for(CHAT, lambda m: m.text.endswith("still relayed"))

    # Made a room admin by alice, the same bob may.
    levels = await alice.get_state(room_id, "m.room.power_levels")
    levels["users"][bob.user_id] = 100
    await alice.send_state(room_id, "m.room.power_levels", levels)
    await bob.send_text(room_id, "!bk relay off")
    await bob.wait_for_event(room_id, notice(bot, "Relay off"))
    await alice.send_text(room_id, "not relayed any more")
    await alice.wait_for_event(room_id, notice(bot, "was not bridged"))
    assert not [m for m in chatnet.messages if "not relayed any more" in m.text]


async def test_the_creator_of_a_v12_room_is_its_admin_whatever_the_power_levels_say(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser,
) -> None:
    alice = await make_matrix_user("alice")
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user", alice.user_id: "admin"},
    )
    room_id = await alice.create_room(name="v12 lobby", invite=[slot.bot_user_id], extra={"room_version": "12"})
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    levels = await alice.get_state(room_id, "m.room.power_levels")
    assert alice.user_id not in levels.get("users", {})  # v12: creators are not listed
    await alice.send_text(room_id, f"!bk link {slot.connector} {CHAT}")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "now the portal"))

    await alice.send_text(room_id, "!bk relay off")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Relay off"))


async def test_hook_creators_who_leave_or_are_kicked_from_a_portal_have_their_hooks_suspended(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser,
    tmp_path: Path,
) -> None:
    # The webhook connector beside a network connector: membership changes in that network's
    # portal still reach it (the core routes portal leaves first, then hands them on).
    alice, bob, carol = [await make_matrix_user(name) for name in ("alice", "bob", "carol")]
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user", alice.user_id: "admin"},
        connectors={"webhook": {
            "factory": "bridges.webhook.connector:WebhookConnector", "ghost_prefix": slot.ghost_prefix,
            "database": f"sqlite+aiosqlite:///{tmp_path / 'wh.db'}",
        }},
    )
    room_id = await linked_portal(alice, slot, CHAT)
    bot = slot.bot_user_id
    levels = await alice.get_state(room_id, "m.room.power_levels")
    for member in (bob, carol):
        await alice.invite(room_id, member.user_id)
        await member.join(room_id)
        levels["users"][member.user_id] = 100
    await alice.send_state(room_id, "m.room.power_levels", levels)
    for member in (bob, carol):
        await member.send_text(room_id, f"!bk webhook create from-{member.user_id[1:4]}")
        await member.wait_for_event(room_id, notice(bot, "Created webhook 'from-"))

    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/kick", json_body={"user_id": bob.user_id})
    await carol.leave(room_id)
    for how in (f"{bob.user_id} was kicked by {alice.user_id}", f"{carol.user_id} left the room"):
        told = await alice.wait_for_event(room_id, notice(bot, how))
        assert "are suspended" in told["content"]["body"]
    await alice.send_text(room_id, "!bk webhook list")
    listing = await alice.wait_for_event(room_id, notice(bot, "Inbound webhooks of this room (2)"))
    assert listing["content"]["body"].count("SUSPENDED") == 2
