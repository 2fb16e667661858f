"""Remote events survive their stay in the outbox: every type, written to JSON (and through a JSON
string, as the database stores it) and read back, is the same event."""

from __future__ import annotations

import json
import typing

import pytest

from bridgekit.events import (
    REMOTE_EVENT_KINDS,
    RemoteChatInfo,
    RemoteDelete,
    RemoteEdit,
    RemoteEvent,
    RemoteMember,
    RemoteMessage,
    RemotePower,
    RemoteReaction,
    RemoteReceipt,
    RemoteTyping,
    remote_event_from_json,
    remote_event_to_json,
)
from bridgekit.ids import ChatID, MessageID, RemoteUserID

CHAT, M1, BOB, OP = ChatID("#chat"), MessageID("m1"), RemoteUserID("bob"), RemoteUserID("op")

# Every field set away from its default, so a field the conversion drops shows.
EXAMPLES: list[RemoteEvent] = [
    RemoteMessage(chat_id=CHAT, message_id=M1, sender_id=BOB, text="hi *there*", html="hi <b>there</b>",
                  msgtype="m.emote", sender_name="Bob", timestamp_ms=1_700_000_000_000, reply_to=MessageID("m0"),
                  mentions=("@alice:hs", "@_net_carol:hs"), sender_avatar_url="https://example.org/bob.png"),
    RemoteEdit(chat_id=CHAT, message_id=M1, edit_id="e2", sender_id=BOB, text="fixed", html="<i>fixed</i>",
               sender_name="Bob"),
    RemoteDelete(chat_id=CHAT, message_id=M1, sender_id=RemoteUserID("mod")),
    RemoteReaction(chat_id=CHAT, message_id=M1, sender_id=BOB, emoji="👍", removed=True, sender_name="Bob",
                   change_id="r7"),
    RemoteTyping(chat_id=CHAT, sender_id=BOB, typing=False, timeout_ms=5_000),
    RemoteReceipt(chat_id=CHAT, sender_id=BOB, message_id=M1),
    RemoteMember(chat_id=CHAT, sender_id=BOB, membership="ban", by=OP, reason="spam", sender_name="Bob",
                 change_id="3"),
    RemoteChatInfo(chat_id=CHAT, name="Chat", topic="Today: tests", changed_by=OP, change_id="9"),
    RemotePower(chat_id=CHAT, sender_id=BOB, level=50, change_id="4", matrix_user="@bob:hs"),
]


def test_the_examples_cover_every_remote_event_type() -> None:
    types = set(typing.get_args(RemoteEvent))
    assert {type(event) for event in EXAMPLES} == types
    assert set(REMOTE_EVENT_KINDS) == types  # each has a stored kind


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: type(event).__name__)
def test_an_event_read_back_from_its_json_is_the_same_event(event: RemoteEvent) -> None:
    stored = json.loads(json.dumps({"network": "net", **remote_event_to_json(event)}))  # as the outbox keeps it
    assert stored["kind"] == REMOTE_EVENT_KINDS[type(event)]
    assert remote_event_from_json(stored) == event


def test_a_row_stored_before_kinds_were_stored_is_a_message() -> None:
    old = {"network": "net", "chat_id": "#chat", "message_id": "m1", "sender_id": "bob", "text": "hi"}
    assert remote_event_from_json(old) == RemoteMessage(chat_id=CHAT, message_id=M1, sender_id=BOB, text="hi")


def test_what_is_not_a_remote_event_is_refused_both_ways() -> None:
    with pytest.raises(TypeError):
        remote_event_to_json("hello")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown remote event kind"):
        remote_event_from_json({"kind": "telepathy", "chat_id": "#chat"})
