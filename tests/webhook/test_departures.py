"""Hooks of a creator who left their room: how the departure is told, and the start-up check that
finds creators who left before this version ran (a database upgraded from an older one)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from bridgekit import BridgeContext, EventID, MatrixEvent, MatrixForbidden, RoomID, UserID
from bridges.webhook.departures import departure_reason, suspend_departed
from bridges.webhook.inbound import InboundPosts
from bridges.webhook.intake import Intake, Request
from bridges.webhook.secret_box import SecretBox
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.signatures import hash_token
from bridges.webhook.store import Hook, OutboundHook, WebhookStore
from tests.webhook.test_store_migration import PostedAtOnce

ROOM, OTHER_ROOM = "!room:example.org", "!gone:example.org"
ALICE, BOB, MOD = UserID("@alice:example.org"), UserID("@bob:example.org"), UserID("@mod:example.org")
BOT = UserID("@bot:example.org")


def member_event(user: str, membership: str, sender: str) -> MatrixEvent:
    return MatrixEvent(event_id=EventID("$m"), room_id=RoomID(ROOM), sender=UserID(sender), type="m.room.member",
                       origin_server_ts=1, content={"membership": membership}, state_key=user)


def test_the_reason_says_how_the_creator_left() -> None:
    assert departure_reason(member_event(BOB, "leave", BOB), BOB, "leave") == f"{BOB} left the room"
    assert departure_reason(member_event(BOB, "leave", MOD), BOB, "leave") == f"{BOB} was kicked by {MOD}"
    assert departure_reason(member_event(BOB, "ban", MOD), BOB, "ban") == f"{BOB} was banned by {MOD}"


class Homeserver:
    """The bot's view of the rooms' member events, and the notices it sent."""

    def __init__(self, members: dict[tuple[str, str], str], unreadable: set[str]) -> None:
        self.members, self.unreadable = members, unreadable
        self.notices: list[tuple[str, str, str]] = []

    def intent(self, user_id: UserID) -> Homeserver:
        assert user_id == BOT
        return self

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = "") -> dict[str, Any]:
        if room_id in self.unreadable:
            raise MatrixForbidden(403, "M_FORBIDDEN", "not in the room")
        return {"membership": self.members[(room_id, state_key)]}

    async def send_text(self, room_id: RoomID, body: str, **options: Any) -> str:
        self.notices.append((room_id, body, options["txn_id"]))
        return "$notice"


async def test_at_start_hooks_of_creators_no_longer_in_the_room_are_suspended(webhook_store: WebhookStore) -> None:
    store = webhook_store
    for hook_id, room, creator in (("a1", ROOM, ALICE), ("b1", ROOM, BOB), ("b2", OTHER_ROOM, BOB)):
        await store.add(Hook(id=hook_id, room_id=room, name=hook_id, creator=creator, scheme="token",
                                  token_hash="0" * 64, sealed_secret=None, identity="bot", created_ms=1))
    await store.add(OutboundHook(id="bo", room_id=ROOM, url="https://example.org/", sealed_secret="x",
                                          creator=BOB, created_ms=1))
    homeserver = Homeserver({(ROOM, ALICE): "join", (ROOM, BOB): "ban"}, unreadable={OTHER_ROOM})
    ctx = cast(BridgeContext, SimpleNamespace(matrix=homeserver, bot_user_id=BOT))

    assert await suspend_departed(ctx, store) == 1
    assert await suspend_departed(ctx, store) == 0  # nothing active is left to suspend: told once

    statuses = {hook_id: (await store.hook(hook_id)).status for hook_id in ("a1", "b1", "b2")}  # type: ignore[union-attr]
    assert statuses == {"a1": "active", "b1": "suspended", "b2": "active"}  # b2: its room cannot be read
    outbound = await store.get(OutboundHook, "bo")
    assert outbound is not None
    assert (outbound.status, outbound.suspended_reason) == ("suspended", f"{BOB} is no longer in the room (banned)")
    [(room, body, _)] = homeserver.notices
    assert room == ROOM
    assert "'b1' (b1), outbound bo" in body


async def test_a_suspended_hook_tells_only_a_sender_who_proves_they_hold_it(webhook_store: WebhookStore) -> None:
    store = webhook_store
    await store.add(Hook(id="h1", room_id=ROOM, name="ci", creator=BOB, scheme="token",
                              token_hash=hash_token("right"), sealed_secret=None, identity="bot", created_ms=1))
    await store.suspend_creator(ROOM, BOB, f"{BOB} was banned by {MOD}")
    intake = Intake(store, WebhookSettings(), SecretBox(None), cast(InboundPosts, PostedAtOnce()))
    body = b'{"text": "hi"}'

    guessed = await intake.handle(Request("h1.wrong", {"Content-Type": "application/json"}, body))
    holder = await intake.handle(Request("h1.right", {"Content-Type": "application/json"}, body))

    assert (guessed.status, guessed.body["error"]) == (401, "bad_token")
    assert (holder.status, holder.body["error"]) == (403, "hook_suspended")
    assert "banned" in holder.body["message"]
    assert await store.pending_inbound() == []
