"""Remote -> Matrix: what a connector emits shows up in the portal, said by the sender's ghost,
in the order it was said; edits, deletions and reactions land on the message they are about; a
send that fails is retried, and one that keeps failing is reported in the room."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridgekit.errors import DeliveryFailed
from bridgekit.events import RemoteDelete, RemoteEdit, RemoteMessage, RemoteReaction, RemoteReceipt, RemoteTyping
from bridgekit.ids import ChatID, MessageID, RemoteUserID
from bridgekit.matrix.paths import txn_id_for
from bridgekit.testing.waiting import eventually
from tests.core.network import NET
from tests.core.wiring import Middle, event_key, middle


def said(chat: str, message_id: str, sender: str, text: str) -> RemoteMessage:
    return RemoteMessage(chat_id=ChatID(chat), message_id=MessageID(message_id), sender_id=RemoteUserID(sender),
                         text=text, sender_name=sender.title())


async def test_messages_appear_through_their_senders_ghosts_in_the_order_they_were_said(core: Middle) -> None:
    room = await core.portal()
    release = core.homeserver.hold("send")  # all queued before the first reaches the room
    lines = [said("chat", f"r{i}", ("bob", "carol")[i % 3 == 0], f"line {i}") for i in range(12)]
    for line in lines:
        await core.emit(line)
    release.set()
    await core.delivered()

    posted = core.homeserver.messages(room)
    assert [(event.sender, event.body) for event in posted] == [
        (core.ghost(line.sender_id), line.text) for line in lines
    ]
    # Each line goes out under a transaction ID of its own remote message, so a resend lands once.
    assert [event.txn_id for event in posted] == [txn_id_for(event_key(NET, line)) for line in lines]
    assert core.homeserver.profiles[core.ghost("bob")]["displayname"] == "Bob"
    assert set(core.homeserver.members(room)) >= {core.ghost("bob"), core.ghost("carol")}


async def test_each_chat_keeps_its_own_order(core: Middle) -> None:
    rooms = {chat: await core.portal(chat) for chat in ("chat", "other")}
    release = core.homeserver.hold("send")
    for i in range(6):
        for chat in rooms:
            await core.emit(said(chat, f"{chat}{i}", f"{chat}er", f"{chat} {i}"))
    release.set()
    await core.delivered()
    for chat, room in rooms.items():
        assert core.homeserver.bodies(room) == [f"{chat} {i}" for i in range(6)]


async def test_a_message_emitted_twice_is_posted_once_and_answers_with_one_event_id(core: Middle) -> None:
    room = await core.portal()
    first = await core.emit(said("chat", "r1", "bob", "only once"), wait=True)
    again = await core.emit(said("chat", "r1", "bob", "only once"), wait=True)
    assert first is not None
    assert again == first
    assert core.homeserver.bodies(room) == ["only once"]
    assert core.homeserver.event(first).body == "only once"


async def test_edits_reactions_and_deletions_land_on_the_message_they_are_about(core: Middle) -> None:
    room = await core.portal()
    original = await core.emit(said("chat", "r1", "bob", "teh plan"), wait=True)
    chat, r1, bob, carol = ChatID("chat"), MessageID("r1"), RemoteUserID("bob"), RemoteUserID("carol")
    edit = await core.emit(RemoteEdit(chat_id=chat, message_id=r1, edit_id="e1", sender_id=bob,
                                      text="the plan"), wait=True)
    reaction = await core.emit(RemoteReaction(chat_id=chat, message_id=r1, sender_id=carol, emoji="👍",
                                              change_id="c1"), wait=True)
    await core.emit(RemoteReaction(chat_id=chat, message_id=r1, sender_id=carol, emoji="👍", removed=True,
                                   change_id="c2"), wait=True)
    await core.emit(RemoteDelete(chat_id=chat, message_id=r1, sender_id=bob), wait=True)
    await core.emit(RemoteReaction(chat_id=chat, message_id=MessageID("never-bridged"), sender_id=carol, emoji="?"),
                    wait=True)

    hs = core.homeserver
    assert edit is not None
    assert reaction is not None
    replacement = hs.event(edit)
    assert replacement.sender == core.ghost("bob")
    assert replacement.content["m.relates_to"] == {"rel_type": "m.replace", "event_id": original}
    assert replacement.content["m.new_content"]["body"] == "the plan"
    annotation = hs.event(reaction)
    assert (annotation.type, annotation.sender) == ("m.reaction", core.ghost("carol"))
    assert annotation.content["m.relates_to"] == {"rel_type": "m.annotation", "event_id": original, "key": "👍"}
    redactions = [(event.sender, event.content["redacts"])
                  for event in hs.messages(room, event_type="m.room.redaction")]
    # Carol's ghost takes back its own reaction; Bob's ghost deletes its own message.
    assert redactions == [(core.ghost("carol"), reaction), (core.ghost("bob"), original)]
    assert len(hs.messages(room, event_type="m.reaction")) == 1  # nothing for the unknown message


async def test_typing_and_read_receipts_show_on_the_ghost(core: Middle) -> None:
    room = await core.portal()
    posted = await core.emit(said("chat", "r1", "carol", "read this"), wait=True)
    await core.emit(RemoteTyping(chat_id=ChatID("chat"), sender_id=RemoteUserID("bob")))
    await core.emit(RemoteReceipt(chat_id=ChatID("chat"), sender_id=RemoteUserID("bob"), message_id=MessageID("r1")))
    await core.emit(RemoteTyping(chat_id=ChatID("chat"), sender_id=RemoteUserID("bob"), typing=False))
    await core.delivered()
    hs = core.homeserver
    assert [(t.user_id, t.typing) for t in hs.typing] == [(core.ghost("bob"), True), (core.ghost("bob"), False)]
    assert [(r.room_id, r.user_id, r.event_id) for r in hs.receipts] == [(room, core.ghost("bob"), posted)]


async def test_a_send_the_homeserver_refuses_once_is_retried_and_posted_once(core: Middle) -> None:
    room = await core.portal()
    core.homeserver.fail("send", times=1, status=502, errcode="M_UNKNOWN")
    event_id = await core.emit(said("chat", "r1", "bob", "second time lucky"), wait=True)
    assert core.homeserver.bodies(room) == ["second time lucky"]
    assert event_id == core.homeserver.messages(room)[0].event_id
    assert [r.status for r in core.homeserver.requests if r.endpoint == "send"] == [502, 200]


async def test_a_send_that_keeps_failing_is_reported_in_the_room_and_the_chat_moves_on(tmp_path: Path) -> None:
    async with middle(tmp_path, max_attempts=2) as core:
        room = await core.portal()
        core.homeserver.fail("send", times=2, status=403, errcode="M_FORBIDDEN", error="no")
        with pytest.raises(DeliveryFailed):
            await core.emit(said("chat", "r1", "bob", "lost"), wait=True)
        await core.emit(said("chat", "r2", "bob", "after the loss"), wait=True)

        notices = core.homeserver.messages(room, sender=core.homeserver.bot_user_id)
        assert [event.body for event in notices] == [
            "A message from Bob could not be delivered to Matrix (MatrixForbidden).",
        ]
        assert notices[0].content["msgtype"] == "m.notice"
        assert core.homeserver.bodies(room, sender=core.ghost("bob")) == ["after the loss"]
        assert core.delivery_counts == (1, 1)


async def test_emit_wait_answers_only_once_the_message_is_in_the_room(core: Middle) -> None:
    room = await core.portal()
    release = core.homeserver.hold("send")
    waiting = asyncio.ensure_future(core.emit(said("chat", "r1", "bob", "patience"), wait=True))
    await eventually(lambda: core.homeserver.held["send"] == 1, what="the send to reach the homeserver")
    assert not waiting.done()  # stored, but not in the room yet: no event ID to give
    release.set()
    assert await waiting == core.homeserver.messages(room)[0].event_id
