"""Steps and predicates the end-to-end tests share: a user's view of the bridge on Matrix (the
steps themselves are in ``bridgekit.demo.matrix_steps``, which the demo runs too), and the
conformance kit's environment built from them."""

from __future__ import annotations

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.demo.matrix_steps import Event, from_sender, link_new_room, notice, open_management_room
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.conformance import ConformanceEnv, RemoteDriver
from bridgekit.testing.synapse import AppserviceSlot


async def management_room(user: MatrixTestClient, slot: AppserviceSlot) -> str:
    """Open a direct chat with the bridge bot; returns it once the bot has said hello."""
    return await open_management_room(user, slot.bot_user_id)


async def linked_portal(user: MatrixTestClient, slot: AppserviceSlot, chat: str, *, name: str | None = None) -> str:
    """A new room, with the bridge bot in it, made the portal of ``chat`` with ``!bk link``."""
    return await link_new_room(user, slot.bot_user_id, slot.connector, chat, name=name or f"{chat} on {slot.connector}")


__all__ = ["Event", "from_sender", "linked_portal", "management_room", "notice", "portal_env"]


async def portal_env(
    user: MatrixTestClient, slot: AppserviceSlot, chat: str, remote: RemoteDriver, *,
    bridge: BridgeProcess | None = None, relay: bool = True, remote_sender: str = "bob",
) -> ConformanceEnv:
    """The conformance kit's environment for a connector run by ``run_bridge``: ``chat`` linked to
    a new room of ``user``'s (:func:`linked_portal`), ghosts named as the core names them, the
    relay's ``<name> text`` unless ``relay=False``, and the bridge killed and restarted for the
    replay check when ``bridge`` is given."""
    room_id = await linked_portal(user, slot, chat)
    name = user.user_id.split(":")[0].lstrip("@")
    return ConformanceEnv(
        user=user, room_id=room_id, chat=chat, remote=remote, remote_sender=remote_sender,
        ghost_of=lambda sender: slot.ghost_user_id(f"{slot.connector}_{sender}"),
        bot_user_id=slot.bot_user_id, shown=(lambda text: f"<{name}> {text}") if relay else (lambda text: text),
        stop_bridge=bridge.kill if bridge is not None else None,
        start_bridge=bridge.start_ready if bridge is not None else None,
    )
