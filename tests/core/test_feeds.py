"""Feeds (``ctx.link_feed``): a chat that posts into a room without making the room its portal.

A room that is one connector's portal (an IRC channel's, say) can take the posts of other chats
(a webhook's), any number of them: their events arrive like a portal's, through the outbox, in
order, answering ``emit(..., wait=True)``, while the portal keeps bridging both ways, is found by
the room as before, and neither displaces nor is displaced by the feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridgekit.connector import BridgeContext
from bridgekit.events import RemoteChatInfo, RemoteEdit, RemoteMessage, RemotePower
from bridgekit.ids import ChatID, MessageID, RemoteUserID, RoomID
from tests.core.network import NET
from tests.core.wiring import ADMIN, RITA, SERVER, Middle, middle

HOOKS, RSS = "hooks", "rss"


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Middle]:
    """The core with the relay-only network and two connectors that only emit (hooks, rss)."""
    async with middle(tmp_path, also_emitting=(HOOKS, RSS)) as wired:
        yield wired


def said(chat: str, message_id: str, sender: str, text: str) -> RemoteMessage:
    return RemoteMessage(chat_id=ChatID(chat), message_id=MessageID(message_id), sender_id=RemoteUserID(sender),
                         text=text, sender_name=sender.title())


async def feed(core: Middle, name: str, room: RoomID, chat: str | None = None) -> BridgeContext:
    ctx = core.context_of(name)
    await ctx.link_feed(ChatID(chat or room), room)
    return ctx


async def test_a_feed_posts_into_a_portal_room_which_keeps_bridging_both_ways(core: Middle) -> None:
    room = await core.portal("chat", relay=True)
    hooks = await feed(core, HOOKS, room)
    rooms_before = set(core.homeserver.rooms)

    posted = await hooks.emit(said(room, "h1", "github", "build passed"), wait=True)
    assert posted is not None
    assert core.homeserver.event(posted).room_id == room
    assert core.homeserver.event(posted).sender == f"@_hooks_github:{SERVER}"
    # The network's own messages still land there, and Matrix messages still reach the network.
    await core.emit(said("chat", "n1", "bob", "hi from the network"), wait=True)
    await core.say(room, RITA, "hello network")
    assert core.homeserver.bodies(room) == ["build passed", "hi from the network"]
    assert core.network.lines("chat") == ["bot:relaybot: <Rita> hello network"]
    # The room is still the network's portal, and only that.
    assert await core.chat_of(room) == "chat"
    assert await hooks.chat_for_room(room) is None
    assert await hooks.portal_chats() == []
    assert set(core.homeserver.rooms) == rooms_before  # no room made for the feed


async def test_many_feeds_of_many_connectors_post_into_one_room_each_in_its_own_order(core: Middle) -> None:
    room = await core.portal("chat")
    hooks = await feed(core, HOOKS, room)
    rss = await feed(core, RSS, room, "planet")
    other_hook = await feed(core, HOOKS, room, "second-hook")
    release = core.homeserver.hold("send")
    for i in range(4):
        await hooks.emit(said(room, f"h{i}", "ci", f"hook {i}"))
        await rss.emit(said("planet", f"r{i}", "planet", f"rss {i}"))
        await other_hook.emit(said("second-hook", f"s{i}", "ci", f"second {i}"))
    release.set()
    await core.delivered()

    bodies = core.homeserver.bodies(room)
    for prefix in ("hook", "rss", "second"):
        assert [body for body in bodies if body.startswith(prefix)] == [f"{prefix} {i}" for i in range(4)]
    assert len(bodies) == 12
    assert await core.chat_of(room) == "chat"


async def test_linking_or_unlinking_the_rooms_portal_leaves_its_feeds_posting(core: Middle) -> None:
    room = await core.portal("chat")
    hooks = await feed(core, HOOKS, room)
    await core.remote.link_portal(NET, "other", room)  # another chat takes the room over
    assert await core.chat_of(room) == "other"
    await hooks.emit(said(room, "h1", "ci", "still here"), wait=True)
    assert await core.remote.unlink_portal(room) == f"other on {NET}"
    await hooks.emit(said(room, "h2", "ci", "and still here"), wait=True)
    assert core.homeserver.bodies(room) == ["still here", "and still here"]
    assert await core.chat_of(room) is None


async def test_a_feed_into_a_room_nobody_bridges_makes_it_no_portal(core: Middle) -> None:
    room = RoomID(core.homeserver.add_room(ADMIN, members=(core.homeserver.bot_user_id,),
                                          power={core.homeserver.bot_user_id: 100}))
    hooks = await feed(core, HOOKS, room)
    await hooks.emit(said(room, "h1", "ci", "deployed"), wait=True)
    assert core.homeserver.bodies(room) == ["deployed"]
    assert await core.stores.portals.portal_for_room(room) is None
    # A Matrix message there is not routed (nothing is bridged): the connectors' handlers get it.
    assert not await core.router.route(core.event(room, RITA, {"msgtype": "m.text", "body": "hi"}))
    # And a portal linked there later is not displaced by the feed, nor the feed by it.
    await core.remote.link_portal(NET, "chat", room)
    await hooks.emit(said(room, "h2", "ci", "again"), wait=True)
    assert await core.chat_of(room) == "chat"
    assert core.homeserver.bodies(room) == ["deployed", "again"]


async def test_a_feed_edits_its_own_messages_but_leaves_the_rooms_name_and_power_alone(core: Middle) -> None:
    room = await core.portal("chat")
    core.homeserver.add_event(room, ADMIN, "m.room.name", {"name": "#chat"}, state_key="")
    hooks = await feed(core, HOOKS, room)
    chat, ci = ChatID(room), RemoteUserID("ci")
    await hooks.emit(said(room, "h1", "ci", "buidl"), wait=True)
    edit = await hooks.emit(RemoteEdit(chat_id=chat, message_id=MessageID("h1"), edit_id="e1", sender_id=ci,
                                       text="build"), wait=True)
    assert edit is not None
    assert await hooks.emit(RemoteChatInfo(chat_id=chat, name="hooks of the room"), wait=True) is None
    assert await hooks.emit(RemotePower(chat_id=chat, sender_id=ci, level=100), wait=True) is None
    assert core.homeserver.state(room, "m.room.name") == {"name": "#chat"}
    assert f"@_hooks_ci:{SERVER}" not in core.homeserver.state(room, "m.room.power_levels")["users"]  # type: ignore[index]


async def test_a_portal_linked_as_a_feed_stops_being_a_portal_and_back(core: Middle) -> None:
    room = RoomID(core.homeserver.add_room(ADMIN, members=(core.homeserver.bot_user_id,),
                                          power={core.homeserver.bot_user_id: 100}))
    hooks = core.context_of(HOOKS)
    await hooks.link_portal(ChatID(room), room)  # what earlier webhook builds did
    assert await hooks.chat_for_room(room) == ChatID(room)
    await hooks.link_feed(ChatID(room), room)
    await hooks.link_feed(ChatID(room), room)  # again: nothing changes
    assert await hooks.chat_for_room(room) is None
    await hooks.emit(said(room, "h1", "ci", "fed"), wait=True)
    await hooks.link_portal(ChatID(room), room)
    assert await hooks.chat_for_room(room) == ChatID(room)
    assert (await core.stores.portals.portal(HOOKS, room)).feed_room is None  # type: ignore[union-attr]
    assert core.homeserver.bodies(room) == ["fed"]


async def test_an_upgraded_room_takes_its_feeds_along(core: Middle) -> None:
    old = await core.portal("chat")
    hooks = await feed(core, HOOKS, old)
    new = RoomID(core.homeserver.add_room(ADMIN, members=(ADMIN,), power={core.homeserver.bot_user_id: 100}))
    assert await core.remote.follow_upgrade(old, new)
    await hooks.emit(said(old, "h1", "ci", "after the upgrade"), wait=True)
    assert core.homeserver.bodies(new) == ["after the upgrade"]
    assert await core.chat_of(new) == "chat"
