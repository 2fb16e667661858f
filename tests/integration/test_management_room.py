"""The management room, as a user meets it on a real Synapse: a DM with the bridge bot answers
commands; in a bridged room `!bk ...` is a command and is not bridged; levels are enforced."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.testing.matrix_steps import management_room
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration



@pytest.fixture
async def bridge(slot: AppserviceSlot, run_bridge: RunBridge) -> AppserviceSlot:
    await run_bridge(slot, "tests.support.echo_connector:EchoConnector")
    return slot


def notice_from(bot: str, containing: str) -> Any:
    return lambda e: (
        e.get("sender") == bot and e.get("content", {}).get("msgtype") == "m.notice"
        and containing in e.get("content", {}).get("body", "")
    )


async def test_a_dm_with_the_bot_is_a_management_room_that_answers_commands(
    bridge: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await management_room(alice, slot)

    await alice.send_text(room_id, "help")
    listing = await alice.wait_for_event(room_id, notice_from(slot.bot_user_id, "status"))
    # A plain user may link the rooms she is an admin of (the room's power level decides).
    assert "link: Make this room the portal of a remote chat" in listing["content"]["body"]

    await alice.send_text(room_id, "status")
    status = await alice.wait_for_event(room_id, notice_from(slot.bot_user_id, "Your permission level"))
    assert "Connectors: example." in status["content"]["body"]
    assert "Your permission level: user." in status["content"]["body"]

    await alice.send_text(room_id, "lnik")
    await alice.wait_for_event(room_id, notice_from(slot.bot_user_id, "Unknown command 'lnik'"))


async def test_in_a_bridged_room_commands_need_the_prefix_and_are_not_bridged(
    bridge: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await alice.create_room(name="bridged", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    echo = slot.ghost_user_id("echo")

    bob = await make_matrix_user("bob")  # a member, not one of the room's admins
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    await bob.send_text(room_id, "!bk link example somechat")
    refusal = await alice.wait_for_event(room_id, notice_from(slot.bot_user_id, "'link' needs power level"))
    assert "your bridge permission level ('user') is enough" in refusal["content"]["body"]
    await alice.send_text(room_id, "plain words")
    await alice.wait_for_event(room_id, lambda e: e.get("sender") == echo and e.get("type") == "m.room.message")
    bridged = [
        e["content"]["body"] for e in await alice.room_messages(room_id)
        if e.get("sender") == echo and e.get("type") == "m.room.message"
    ]
    assert bridged == ["echo: plain words"]  # the command never reached the remote side


async def test_a_room_that_turns_on_encryption_is_told_the_bridge_cannot_read_it(
    bridge: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await alice.create_room(name="soon encrypted", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    await alice.send_state(room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
    warning = await alice.wait_for_event(room_id, notice_from(slot.bot_user_id, "now encrypted"))
    assert "will not reach the other side" in warning["content"]["body"]
