"""Idempotency keys of remote events: the outbox finds an event emitted again by its key, also one
stored by an earlier release, so each type's key is pinned here as it has always been written."""

from __future__ import annotations

import json

from bridgekit.core.remote_delivery import event_key, idempotency_key
from bridgekit.events import RemoteTyping
from bridgekit.ids import ChatID, RemoteUserID
from tests.unit.test_remote_events_json import EXAMPLES

PINNED = {
    "RemoteMessage": '["msg","net","#chat","m1"]',
    "RemoteEdit": '["edit","net","#chat","m1","e2"]',
    "RemoteDelete": '["delete","net","#chat","m1"]',
    "RemoteReaction": '["reaction","net","#chat","m1","bob","👍","remove","r7"]',
    "RemoteReceipt": '["receipt","net","#chat","bob","m1"]',
    "RemoteMember": '["member","net","#chat","bob","ban","3"]',
    "RemoteChatInfo": '["chat-info","net","#chat","Chat","Today: tests","9"]',
    "RemotePower": '["power","net","#chat","bob","50","4"]',
}


def test_every_event_type_keeps_its_key() -> None:
    keys = {type(event).__name__: event_key("net", event) for event in EXAMPLES if not isinstance(event, RemoteTyping)}
    assert keys == PINNED
    assert PINNED["RemoteMessage"] == idempotency_key("net", "#chat", "m1")


def test_typing_is_never_deduplicated() -> None:
    typing = RemoteTyping(chat_id=ChatID("#chat"), sender_id=RemoteUserID("bob"), typing=False)
    first, second = event_key("net", typing), event_key("net", typing)
    assert first != second
    assert json.loads(first)[:5] == ["typing", "net", "#chat", "bob", "False"]
