"""Outbound deliveries are checked at send time: a suspended hook, or a room the bridge bot has
left, gets nothing, also what was queued before. A real store; the homeserver and the receiver
are fakes that record what they were asked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from bridgekit import BridgeContext, GuardedHTTP, Job, UserID
from bridges.webhook.outbound import DELIVERY, OutboundDeliverer, delivery_job, hook_key
from bridges.webhook.secret_box import SecretBox, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import SUSPENDED, OutboundHook, WebhookStore

ROOM = "!room:example.org"
BOT = UserID("@bot:example.org")
KEY = "q3Q0n5UoM8i4m5O8cWJw6nNQ2rQbpiuZ3x2nW1y2o0k="


class Bot:
    def __init__(self, membership: str) -> None:
        self.membership = membership

    def intent(self, user_id: UserID) -> Bot:
        return self

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        return {"membership": self.membership}


class Receiver:
    def __init__(self) -> None:
        self.posts: list[str] = []

    async def request(self, method: str, url: str, **options: Any) -> tuple[httpx.Response, bytes]:
        self.posts.append(url)
        return httpx.Response(200), b""


async def deliver_one(store: WebhookStore, *, bot_membership: str, suspend: bool) -> list[str]:
    """Queue one delivery for an active hook, then change the world, then run its job: what the
    receiver got (the job ends without error either way: a dropped delivery is not retried)."""
    box = SecretBox(KEY)
    receiver = Receiver()
    ctx = cast(BridgeContext, SimpleNamespace(matrix=Bot(bot_membership), bot_user_id=BOT))
    deliverer = OutboundDeliverer(ctx, store, WebhookSettings(), cast(GuardedHTTP, receiver), box)
    hook = OutboundHook(id="o1", room_id=ROOM, url="https://receiver.example/in",
                        sealed_secret=box.seal("s", row=outbound_row("o1")), creator="@bob:example.org", created_ms=1)
    await store.add(hook)
    payload = delivery_job(hook.id, hook.creator, "$e", ROOM, "{}", "d1")
    if suspend:  # suspended after the delivery was queued: the send-time check must hold
        await store.update(OutboundHook, "o1", status=SUSPENDED, suspended_reason="bob left the room")
    await deliverer.deliver(Job(id=1, kind=DELIVERY, key=hook_key("o1"), payload=payload, attempt=1))
    return receiver.posts


async def test_a_delivery_goes_out_while_the_hook_is_active_and_the_bot_in_the_room(
    webhook_store: WebhookStore,
) -> None:
    assert await deliver_one(webhook_store, bot_membership="join", suspend=False) == ["https://receiver.example/in"]


@pytest.mark.parametrize(("membership", "suspend"), [("join", True), ("leave", False), ("ban", False)])
async def test_a_queued_delivery_is_dropped_unsent(webhook_store: WebhookStore, membership: str, suspend: bool) -> None:
    assert await deliver_one(webhook_store, bot_membership=membership, suspend=suspend) == []
