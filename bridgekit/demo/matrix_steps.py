"""A Matrix user's steps with the bridge (open the management room, link a portal), shared by the
demo and the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridgekit.demo.matrix_client import MatrixTestClient

Event = dict[str, Any]


def from_sender(sender: str, event_type: str = "m.room.message") -> Callable[[Event], bool]:
    """An event of ``event_type`` sent by ``sender``."""
    return lambda e: e.get("sender") == sender and e.get("type") == event_type


def notice(bot: str, text: str) -> Callable[[Event], bool]:
    """A message from ``bot`` whose body contains ``text``."""
    return lambda e: e.get("sender") == bot and text in e.get("content", {}).get("body", "")


async def open_management_room(user: MatrixTestClient, bot_user_id: str) -> str:
    """Open a direct chat with the bridge bot; returns it once the bot has said hello."""
    created = await user.request(
        "POST", "/_matrix/client/v3/createRoom",
        json_body={"is_direct": True, "invite": [bot_user_id], "preset": "trusted_private_chat"},
    )
    room_id: str = created["room_id"]
    await user.wait_for_event(room_id, notice(bot_user_id, "management room"))
    return room_id


async def link_new_room(user: MatrixTestClient, bot_user_id: str, connector: str, chat: str, *, name: str) -> str:
    """A new room, with the bridge bot in it, made the portal of ``chat`` with ``!bk link``."""
    room_id = await user.create_room(name=name, invite=[bot_user_id])
    await user.wait_for_membership(room_id, bot_user_id)
    await user.send_text(room_id, f"!bk link {connector} {chat}")
    await user.wait_for_event(room_id, notice(bot_user_id, "now the portal"))
    return room_id
