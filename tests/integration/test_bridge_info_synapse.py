"""Bridge info (MSC2346) on a real Synapse: what a human member of a portal reads in its state.

Uses the session's ``main`` appservice slot and its bot. Each test makes its own rooms and users.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from bridgekit.core.bridge_info import (
    AnnounceResult,
    BridgeSection,
    announce_bridge,
    bridge_info_content,
    bridge_info_state_key,
)
from bridgekit.demo.matrix_client import MatrixRequestError, MatrixTestClient
from bridgekit.events import JSONDict
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.testing.synapse_harness import MakeMatrixUser

pytestmark = pytest.mark.integration

BRIDGE_TYPES = ("m.bridge", "uk.half-shot.bridge")


def channel_info(client: MatrixClient) -> tuple[str, JSONDict]:
    """A state key and content for a fresh channel (random, so tests never share one)."""
    channel = f"#friends-{secrets.token_hex(3)}"
    key = bridge_info_state_key("org.example.bridgekit-test", "irc", "libera", channel)
    content = bridge_info_content(
        bridgebot=client.bot_user_id,
        protocol=BridgeSection("irc", "IRC"),
        network=BridgeSection("libera", "Libera.Chat", external_url="ircs://irc.libera.chat"),
        channel=BridgeSection(channel, external_url=f"ircs://irc.libera.chat/{channel}"),
    )
    return key, content


def is_notice(event: dict[str, Any]) -> bool:
    return event.get("type") == "m.room.message" and event["content"].get("msgtype") == "m.notice"


async def test_a_member_of_a_portal_reads_both_bridge_info_events(
    client: MatrixClient, matrix_user: MatrixTestClient,
) -> None:
    room_id = await client.bot.create_room(
        name="portal", preset="private_chat", invitees=[UserID(matrix_user.user_id)],
    )
    await matrix_user.join(room_id)
    key, content = channel_info(client)

    result = await announce_bridge(client.bot, room_id, key, content)
    again = await announce_bridge(client.bot, room_id, key, content)

    assert result is AnnounceResult.SENT
    assert again is AnnounceResult.UNCHANGED
    for event_type in BRIDGE_TYPES:
        assert await matrix_user.get_state(room_id, event_type, key) == content
    state = await matrix_user.get_state(room_id)
    bridge_events = [event for event in state if event["type"] in BRIDGE_TYPES]
    assert len(bridge_events) == 2  # the second announce sent nothing new
    assert {event["sender"] for event in bridge_events} == {client.bot_user_id}


@pytest.mark.parametrize("room_version", ["11", "12"])
async def test_a_bot_without_power_asks_for_it_once_and_sets_nothing(
    client: MatrixClient, make_matrix_user: MakeMatrixUser, room_version: str,
) -> None:
    # A plumbed room: a human made it, state events need 50, the invited bot has 0.
    human = await make_matrix_user("admin")
    room_id = RoomID(await human.create_room(
        name="plumbed", invite=[client.bot_user_id],
        extra={"room_version": room_version,
               "power_level_content_override": {"state_default": 50, "users_default": 0}},
    ))
    await client.bot.join(room_id)
    key, content = channel_info(client)

    first = await announce_bridge(client.bot, room_id, key, content)
    retry = await announce_bridge(client.bot, room_id, key, content)

    assert first is retry is AnnounceResult.INSUFFICIENT_POWER
    for event_type in BRIDGE_TYPES:
        with pytest.raises(MatrixRequestError) as missing:
            await human.get_state(room_id, event_type, key)
        assert missing.value.status == 404
    notice = await human.wait_for_event(room_id, is_notice)
    assert notice["sender"] == client.bot_user_id
    assert "power level 50" in notice["content"]["body"]
    assert client.bot_user_id in notice["content"]["body"]
    if room_version == "11":  # v12 creators are not listed in the power levels, so not pinged
        assert notice["content"]["m.mentions"] == {"user_ids": [human.user_id]}
    notices = [event for event in await human.room_messages(room_id) if is_notice(event)]
    assert len(notices) == 1
