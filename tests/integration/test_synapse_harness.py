"""The real-Synapse harness itself: users, rooms, sync back-fill and an appservice token."""

from __future__ import annotations

import httpx
import pytest

from tests.servers.matrix_test_client import is_text
from tests.synapse_fixtures import MakeMatrixUser, SynapseHarness

pytestmark = pytest.mark.integration


async def test_alice_says_hi_to_bob(make_matrix_user: MakeMatrixUser) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await alice.create_room(name="harness story", invite=[bob.user_id])

    await bob.wait_for_invite(room_id, timeout=10)
    assert await bob.join(room_id) == room_id
    await alice.wait_for_event(
        room_id,
        lambda ev: ev["type"] == "m.room.member"
        and ev.get("state_key") == bob.user_id
        and ev["content"].get("membership") == "join",
        timeout=10,
    )
    event_id = await alice.send_text(room_id, "hi")

    seen = await bob.wait_for_event(room_id, is_text("hi"), timeout=10)
    assert seen["event_id"] == event_id
    assert seen["sender"] == alice.user_id
    assert (await bob.get_event(room_id, event_id))["content"]["body"] == "hi"
    assert await alice.joined_members(room_id) == {alice.user_id, bob.user_id}


async def test_burst_of_sixty_arrives_complete_and_in_order(make_matrix_user: MakeMatrixUser) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await alice.create_room(name="burst", invite=[bob.user_id])
    await bob.join(room_id)
    # Bob has synced before the burst, so the burst reaches him as incremental syncs whose
    # timelines exceed the limit: this is the back-fill path, not the initial sync.
    await bob.wait_for_event(room_id, lambda ev: ev["type"] == "m.room.create", timeout=10)

    sent = [await alice.send_text(room_id, f"burst {i}") for i in range(60)]

    def is_burst(ev: dict[str, object]) -> bool:
        content = ev.get("content")
        return isinstance(content, dict) and str(content.get("body", "")).startswith("burst ")

    got = await bob.wait_for_events(room_id, is_burst, 60, timeout=60)
    assert [ev["event_id"] for ev in got] == sent
    assert [ev["content"]["body"] for ev in got] == [f"burst {i}" for i in range(60)]
    assert bob.limited_syncs >= 1, "the burst never exceeded the sync timeline limit"
    # /messages paging sees the same 60, in the same order.
    history = [ev for ev in await bob.room_messages(room_id) if is_burst(ev)]
    assert [ev["event_id"] for ev in history] == sent


async def test_main_slot_bot_whoami_with_as_token(synapse: SynapseHarness) -> None:
    slot = synapse.slot("main")
    async with httpx.AsyncClient(base_url=synapse.url, timeout=10) as http:
        resp = await http.get(
            "/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {slot.as_token}"},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == slot.bot_user_id == f"@_bk_bot:{synapse.server_name}"


async def test_human_users_are_exempt_from_the_low_message_rate(
    make_matrix_user: MakeMatrixUser,
) -> None:
    # rc_message is 0.5/s burst 3 server-wide (for the "ratelimited" slot); without the
    # override the fifth quick message would be answered 429.
    carol = await make_matrix_user("carol")
    room_id = await carol.create_room(name="no limits for humans")
    for i in range(10):
        await carol.send_text(room_id, f"quick {i}")
