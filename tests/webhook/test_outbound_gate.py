"""Outbound deliveries are checked at send time: a suspended hook, or a room the bridge bot has
left, gets nothing, also what was queued before. A real store; the homeserver and the receiver
are fakes that record what they were asked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from bridgekit import BridgeContext, GuardedHTTP, UserID
from bridges.webhook.outbound import OutboundDeliverer
from bridges.webhook.secret_box import SecretBox, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import SUSPENDED, OutboundDelivery, OutboundHook, WebhookStore

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


async def deliver_one(tmp_path: Path, *, bot_membership: str, suspend: bool) -> tuple[str, list[str]]:
    """Queue one delivery for an active hook, then change the world, then let the deliverer run:
    the delivery's final state and what the receiver got."""
    store = await WebhookStore.open(f"sqlite+aiosqlite:///{tmp_path / 'hooks.db'}")
    box = SecretBox(KEY)
    receiver = Receiver()
    ctx = cast(BridgeContext, SimpleNamespace(matrix=Bot(bot_membership), bot_user_id=BOT))
    deliverer = OutboundDeliverer(ctx, store, WebhookSettings(), cast(GuardedHTTP, receiver), box)
    try:
        await store.add_outbound(OutboundHook(id="o1", room_id=ROOM, url="https://receiver.example/in",
                                              sealed_secret=box.seal("s", row=outbound_row("o1")),
                                              creator="@bob:example.org", created_ms=1))
        await store.add_delivery(OutboundDelivery(id="d1", hook_id="o1", event_id="$e", room_id=ROOM, body="{}",
                                                  state="pending", attempts=0, next_attempt_ms=0, last_error=None))
        if suspend:  # as if suspended by a path that left the queue alone: the send-time check must hold
            await store.update_outbound("o1", status=SUSPENDED, suspended_reason="bob left the room")
        final: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        update = store.update_delivery

        async def recorded(delivery_id: str, **values: Any) -> None:  # the deliverer's last word on it
            await update(delivery_id, **values)
            if "state" in values and not final.done():
                final.set_result(values["state"])

        store.update_delivery = recorded  # type: ignore[method-assign]
        deliverer.start()
        return await asyncio.wait_for(final, 10), receiver.posts
    finally:
        await deliverer.stop()
        await store.close()


async def test_a_delivery_goes_out_while_the_hook_is_active_and_the_bot_in_the_room(tmp_path: Path) -> None:
    assert await deliver_one(tmp_path, bot_membership="join", suspend=False) == ("sent", ["https://receiver.example/in"])


@pytest.mark.parametrize(("membership", "suspend"), [("join", True), ("leave", False), ("ban", False)])
async def test_a_queued_delivery_is_dropped_unsent(tmp_path: Path, membership: str, suspend: bool) -> None:
    assert await deliver_one(tmp_path, bot_membership=membership, suspend=suspend) == ("dropped", [])
