"""An inbound hook in a room another connector bridges: Synapse, a real `bridgekit run` with the
webhook connector beside chatnet's (a network with sessions, on loopback). The hook posts into
the room as a feed, so the room stays chatnet's portal and keeps bridging both ways; an outbound
hook of the room gets what Matrix users say there, as it would in a room no network bridges."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from bridgekit.testing.chatnet import ChatnetClient, ChatnetServer
from bridgekit.testing.matrix_steps import linked_portal, management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge
from tests.webhook.receiver import Receiver

pytestmark = pytest.mark.integration

CHAT = "lobby"


async def test_a_hook_posting_into_a_portal_leaves_it_bridging_both_ways(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser,
    tmp_path: Path,
) -> None:
    alice = await make_matrix_user("alice")
    receiver = Receiver()
    await receiver.start()
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user", alice.user_id: "admin"},
        connectors={"hooks": {
            "factory": "bridges.webhook.connector:WebhookConnector", "ghost_prefix": slot.ghost_prefix,
            "public_url": slot.bridge_url, "database": f"sqlite+aiosqlite:///{tmp_path / 'wh.db'}",
            "outbound_allow": [f"127.0.0.1:{receiver.port}"],
        }},
    )
    dm = await management_room(alice, slot)
    room_id = await linked_portal(alice, slot, CHAT)
    bot = slot.bot_user_id
    bob = ChatnetClient("bob")
    await bob.connect(chatnet.host, chatnet.port)
    bob.join(CHAT)
    try:
        await alice.send_text(room_id, "!bk webhook create ci")
        await alice.wait_for_event(room_id, notice(bot, "Created webhook 'ci'"))
        private = await alice.wait_for_event(dm, notice(bot, "URL (keep it secret)"))
        url = re.search(r"URL[^:]*: (\S+)", private["content"]["body"]).group(1)  # type: ignore[union-attr]
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(url, json={"text": "build 7 passed"})
        assert answer.status_code == 200, answer.text
        event_id = answer.json()["event_id"]
        hooked = await alice.wait_for_event(room_id, lambda e: e["event_id"] == event_id)
        assert hooked["sender"] == bot
        assert "build 7 passed" in hooked["content"]["body"]

        await alice.send_text(room_id, f"!bk webhook out add {receiver.url}/room")
        await alice.wait_for_event(room_id, notice(bot, "Added outbound webhook"))

        # The room is still chatnet's portal, both ways.
        await alice.send_text(room_id, "hi bob")
        await chatnet.wait_for(CHAT, lambda m: m.text.endswith("hi bob"))
        await bob.say(CHAT, "hello alice")
        ghost = slot.ghost_user_id(f"{slot.connector}_bob")
        said = await alice.wait_for_event(room_id, lambda e: e.get("sender") == ghost and e["type"] == "m.room.message")
        assert said["content"]["body"] == "hello alice"
        # The outbound hook got alice's message too (chatnet's sessions took it as well).
        delivered = await receiver.wait_for(1, "/room")
        assert "hi bob" in delivered[0].body.decode()
        # What the hook posted was not relayed to the network (the bridge's own posts never are).
        assert not [m for m in chatnet.messages if "build 7 passed" in m.text]
        await alice.send_text(room_id, "!bk webhook list")
        await alice.wait_for_event(room_id, notice(bot, "Inbound webhooks of this room (1)"))
    finally:
        await bob.close()
        await receiver.stop()
