"""Ghosts made when the default prefix was followed by the connector's name once more
(``@_net_net_bob``) keep their IDs after the rule changed: the core reads them from the ghost
table at start and posts with them; every new ghost gets the short ID (``@_net_carol``)."""

from __future__ import annotations

from bridgekit.events import RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID
from bridgekit.naming import ghost_user_id
from tests.core.network import NET
from tests.core.wiring import GHOST_PREFIX, SERVER, Middle


def said(message_id: str, sender: str) -> RemoteMessage:
    return RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID(message_id), sender_id=RemoteUserID(sender),
                         text=f"{sender} here", sender_name=sender.title())


async def test_a_ghost_made_under_the_old_rule_keeps_its_id_and_new_ones_get_the_short_one(core: Middle) -> None:
    old_bob = ghost_user_id(GHOST_PREFIX, NET, "bob", SERVER)
    assert old_bob == f"@_net_net_bob:{SERVER}"
    await core.stores.ghosts.remember_name(NET, "bob", old_bob, "Bob")  # what the previous version stored
    assert await core.remote.ghost_ids.load(core.stores.ghosts) == 1  # as at the next start
    room = await core.portal()

    bob = await core.emit(said("m1", "bob"), wait=True)
    carol = await core.emit(said("m2", "carol"), wait=True)
    assert bob is not None
    assert carol is not None
    assert core.homeserver.event(bob).sender == old_bob
    assert core.homeserver.event(carol).sender == f"@_net_carol:{SERVER}" == core.ghost("carol")
    # The connector's context names both as the core does, and reads both back.
    assert core.ctx.ghost_for(RemoteUserID("bob")) == old_bob
    assert core.ctx.sender_of_ghost(old_bob) == "bob"
    assert core.ctx.sender_of_ghost(core.ghost("carol")) == "carol"
    assert set(core.homeserver.members(room)) >= {old_bob, core.ghost("carol")}
