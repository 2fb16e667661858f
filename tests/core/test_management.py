"""The management room: the bot accepts a direct chat from people who may use the bridge and
answers commands there; in portals, ``!bk`` commands change the room only for those allowed to."""

from __future__ import annotations

from bridgekit.events import RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID, RoomID, UserID
from tests.core.wiring import ADMIN, ALICE, EVE, Middle


async def open_dm(core: Middle, user: UserID) -> RoomID:
    """``user`` makes a direct chat and invites the bridge bot to it, as a client does."""
    hs = core.homeserver
    room = RoomID(hs.add_room(user, public=False))
    invite = hs.invite(room, user, hs.bot_user_id, is_direct=True)
    await core.management.handle(core.event(room, user, {"membership": "invite", "is_direct": True},
                                            event_type="m.room.member", state_key=hs.bot_user_id, event_id=invite))
    return room


async def command(core: Middle, room: RoomID, sender: UserID, text: str) -> str:
    """``sender`` sends ``text`` in ``room``; the bot's answer to it."""
    event = core.event(room, sender, {"msgtype": "m.text", "body": text})
    assert await core.management.handle(event), f"{text!r} was not taken as a command"
    answer = core.homeserver.messages(room, sender=core.homeserver.bot_user_id)[-1]
    assert answer.content["msgtype"] == "m.notice"
    return answer.body or ""


async def test_a_direct_chat_becomes_the_users_management_room_and_help_lists_their_commands(core: Middle) -> None:
    dm = await open_dm(core, ALICE)
    hs = core.homeserver
    assert hs.membership(dm, hs.bot_user_id) == "join"
    assert hs.bodies(dm, sender=hs.bot_user_id) == [
        "Hello! This is your management room for the bridge: send 'help' to see what you can do.",
    ]
    answer = await command(core, dm, ALICE, "help")
    assert answer.startswith("Commands you can use (your permission level: user):")
    assert "  login: " in answer
    assert "  link: Make this room the portal of a remote chat" in answer  # in rooms she is an admin of


async def test_an_invite_from_someone_the_bridge_ignores_is_not_accepted(core: Middle) -> None:
    dm = await open_dm(core, EVE)
    hs = core.homeserver
    assert hs.membership(dm, hs.bot_user_id) == "invite"
    assert hs.bodies(dm) == []


async def test_ordinary_messages_are_not_commands_outside_the_management_room(core: Middle) -> None:
    room = await core.portal()
    assert not await core.management.handle(core.event(room, ALICE, {"msgtype": "m.text", "body": "help"}))
    assert core.homeserver.bodies(room) == []


async def test_link_and_unlink_need_the_rooms_admin_power_except_for_a_bridge_admin(core: Middle) -> None:
    hs = core.homeserver
    room = RoomID(hs.add_room(ADMIN, members=(ALICE, hs.bot_user_id), power={hs.bot_user_id: 100}))

    refused = await command(core, room, ALICE, "!bk link net Chat")
    assert refused.startswith("'link' needs power level ")
    assert "your bridge permission level ('user') is enough" in refused
    assert await core.chat_of(room) is None

    assert await command(core, room, ADMIN, "!bk link net nosuchchat") == (
        "net has no chat 'nosuchchat' that can be bridged: check its name."
    )
    assert await command(core, room, ADMIN, "!bk link net Chat") == "This room is now the portal of chat on net."
    bridge_info = [event for event in hs.events if event.room_id == room and event.type == "m.bridge"]
    assert bridge_info[-1].content["channel"]["id"] == "chat"
    # The room bridges now: the chat's messages appear in it.
    await core.emit(RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("r1"),
                                  sender_id=RemoteUserID("bob"), text="hi matrix"), wait=True)
    assert hs.bodies(room, sender=core.ghost("bob")) == ["hi matrix"]

    assert (await command(core, room, ALICE, "!bk unlink")).startswith("'unlink' needs power level ")
    assert await command(core, room, ADMIN, "!bk unlink") == "This room no longer bridges chat on net."
    assert hs.state(room, "m.bridge", bridge_info[-1].state_key or "") == {}  # clients stop showing it bridged
    await core.emit(RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("r2"),
                                  sender_id=RemoteUserID("bob"), text="anyone?"))
    await core.delivered()
    assert hs.bodies(room, sender=core.ghost("bob")) == ["hi matrix"]
