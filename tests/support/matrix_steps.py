"""Steps and predicates the end-to-end tests share: a user's view of the bridge on Matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.servers.matrix_test_client import MatrixTestClient
from tests.servers.synapse import AppserviceSlot

Event = dict[str, Any]


def from_sender(sender: str, event_type: str = "m.room.message") -> Callable[[Event], bool]:
    """An event of ``event_type`` sent by ``sender``."""
    return lambda e: e.get("sender") == sender and e.get("type") == event_type


def notice(bot: str, text: str) -> Callable[[Event], bool]:
    """A message from ``bot`` whose body contains ``text``."""
    return lambda e: e.get("sender") == bot and text in e.get("content", {}).get("body", "")


async def management_room(user: MatrixTestClient, slot: AppserviceSlot) -> str:
    """Open a direct chat with the bridge bot; returns it once the bot has said hello."""
    created = await user.request(
        "POST", "/_matrix/client/v3/createRoom",
        json_body={"is_direct": True, "invite": [slot.bot_user_id], "preset": "trusted_private_chat"},
    )
    room_id: str = created["room_id"]
    await user.wait_for_event(room_id, notice(slot.bot_user_id, "management room"))
    return room_id


async def linked_portal(user: MatrixTestClient, slot: AppserviceSlot, chat: str, *, name: str | None = None) -> str:
    """A new room, with the bridge bot in it, made the portal of ``chat`` with ``!bk link``."""
    room_id = await user.create_room(name=name or f"{chat} on {slot.connector}", invite=[slot.bot_user_id])
    await user.wait_for_membership(room_id, slot.bot_user_id)
    await user.send_text(room_id, f"!bk link {slot.connector} {chat}")
    await user.wait_for_event(room_id, notice(slot.bot_user_id, "now the portal"))
    return room_id


__all__ = ["Event", "from_sender", "linked_portal", "management_room", "notice"]
