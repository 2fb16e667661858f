"""Remote -> Matrix through a real bridge process and Synapse: a remote user speaks through their
ghost (named, with the remote timestamp), a remote reply is a Matrix reply, and a burst emitted
while the bridge is SIGKILLed arrives complete, once, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

NETWORK = "example"  # the slot's connector section name, which names the ghosts' network


@pytest.fixture
async def bridge(slot: AppserviceSlot, run_bridge: RunBridge) -> tuple[BridgeProcess, AppserviceSlot]:
    return await run_bridge(slot, "tests.support.remote_chat_connector:RemoteChatConnector"), slot


async def portal_with(alice: MatrixTestClient, slot: AppserviceSlot) -> str:
    room_id = await alice.create_room(name="remote chat", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    return room_id


def from_ghost(ghost: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("sender") == ghost and e.get("type") == "m.room.message"


Bridge = tuple[BridgeProcess, AppserviceSlot]


async def test_a_remote_user_speaks_through_a_named_ghost_and_replies_are_replies(
    bridge: Bridge, make_matrix_user: MakeMatrixUser
) -> None:
    _process, slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await portal_with(alice, slot)
    bob = slot.ghost_user_id(f"{NETWORK}_bob")
    carol = slot.ghost_user_id(f"{NETWORK}_carol")

    trigger = await alice.send_text(room_id, "!remote bob: hello from the other side")
    said = await alice.wait_for_event(room_id, from_ghost(bob))
    assert said["content"]["body"] == "hello from the other side"
    assert said["origin_server_ts"] == (await alice.get_event(room_id, trigger))["origin_server_ts"] + 1000
    profile = await alice.request("GET", f"/_matrix/client/v3/profile/{bob}/displayname")
    assert profile["displayname"] == "Bob"

    # The bot was invited with power level 0, so it says what it needs instead of setting m.bridge.
    await alice.wait_for_event(
        room_id,
        lambda e: e.get("sender") == slot.bot_user_id and "power level" in e.get("content", {}).get("body", ""),
    )

    await alice.send_text(room_id, "!remote carol^: and this is my answer")
    answer = await alice.wait_for_event(room_id, from_ghost(carol))
    assert answer["content"]["body"] == "and this is my answer"
    assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == said["event_id"]


async def test_a_burst_survives_a_sigkill_and_arrives_once_in_order(
    bridge: Bridge, make_matrix_user: MakeMatrixUser
) -> None:
    process, slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await portal_with(alice, slot)
    ghost = slot.ghost_user_id(f"{NETWORK}_burst")

    await alice.send_text(room_id, "!burst 30")
    await alice.wait_for_event(room_id, from_ghost(ghost), timeout=60)
    await process.kill()  # mid-burst: some sent, some only stored, maybe some not yet emitted
    await process.start_ready()
    await alice.wait_for_events(room_id, from_ghost(ghost), 30, timeout=120)
    bodies = [e["content"]["body"] for e in await alice.room_messages(room_id) if from_ghost(ghost)(e)]
    assert bodies == [f"burst {i}" for i in range(30)]


async def test_an_emit_that_waits_answers_with_the_posted_event_once_and_again(
    bridge: Bridge, make_matrix_user: MakeMatrixUser
) -> None:
    _process, slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await portal_with(alice, slot)
    dave = slot.ghost_user_id(f"{NETWORK}_dave")

    def answer_to(message_id: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e.get("sender") == slot.bot_user_id and e.get("content", {}).get("body", "").startswith(
            f"posted {message_id} as "
        )

    await alice.send_text(room_id, "!wait w1 dave: are you there?")
    answer = await alice.wait_for_event(room_id, answer_to("w1"))
    said = await alice.wait_for_event(room_id, from_ghost(dave))
    # The wait returned the ID of the ghost's message, in the room before the answer.
    assert answer["content"]["body"] == f"posted w1 as {said['event_id']}"
    assert said["content"]["body"] == "are you there?"

    # The same remote message emitted again (a sender retrying): the same event, not a second one.
    await alice.send_text(room_id, "!wait w1 dave: are you there?")
    await alice.wait_for_events(room_id, answer_to("w1"), 2)
    messages = await alice.room_messages(room_id)
    answers = [e for e in messages if answer_to("w1")(e)]
    assert [e["content"]["body"] for e in answers] == [f"posted w1 as {said['event_id']}"] * 2
    assert [e["event_id"] for e in messages if from_ghost(dave)(e)] == [said["event_id"]]
    order = [e["event_id"] for e in messages]
    assert order.index(said["event_id"]) < order.index(answers[0]["event_id"])


async def test_a_connectors_jobs_run_in_order_per_key_with_a_retry(
    bridge: Bridge, make_matrix_user: MakeMatrixUser
) -> None:
    _process, slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await portal_with(alice, slot)

    def job_notice(e: dict[str, Any]) -> bool:
        return e.get("sender") == slot.bot_user_id and e.get("content", {}).get("body", "").startswith("job ")

    await alice.send_text(room_id, "!job fail-once first")
    await alice.send_text(room_id, "!job second")
    await alice.wait_for_events(room_id, job_notice, 2)
    bodies = [e["content"]["body"] for e in await alice.room_messages(room_id) if job_notice(e)]
    assert bodies == ["job first (attempt 2)", "job second (attempt 1)"]  # the retry held back the second


async def test_a_connectors_own_table_is_made_at_start_and_kept_across_a_restart(
    bridge: Bridge, make_matrix_user: MakeMatrixUser
) -> None:
    process, slot = bridge
    alice = await make_matrix_user("alice")
    room_id = await portal_with(alice, slot)

    def count_notice(count: int) -> Callable[[dict[str, Any]], bool]:
        body = f"notes here: {count}"
        return lambda e: e.get("sender") == slot.bot_user_id and e.get("content", {}).get("body") == body

    await alice.send_text(room_id, "!note first")
    await alice.wait_for_event(room_id, count_notice(1))
    await process.stop()
    await process.start_ready()  # the second start migrates nothing and keeps the rows
    await alice.send_text(room_id, "!note second")
    await alice.wait_for_event(room_id, count_notice(2))
