"""Steps and predicates the end-to-end tests share: a user's view of the bridge on Matrix (the
steps themselves are in ``bridgekit.demo.matrix_steps``, which the demo runs too)."""

from __future__ import annotations

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.demo.matrix_steps import Event, from_sender, link_new_room, notice, open_management_room
from tests.servers.synapse import AppserviceSlot


async def management_room(user: MatrixTestClient, slot: AppserviceSlot) -> str:
    """Open a direct chat with the bridge bot; returns it once the bot has said hello."""
    return await open_management_room(user, slot.bot_user_id)


async def linked_portal(user: MatrixTestClient, slot: AppserviceSlot, chat: str, *, name: str | None = None) -> str:
    """A new room, with the bridge bot in it, made the portal of ``chat`` with ``!bk link``."""
    return await link_new_room(user, slot.bot_user_id, slot.connector, chat, name=name or f"{chat} on {slot.connector}")


__all__ = ["Event", "from_sender", "linked_portal", "management_room", "notice"]
