"""The bridge as a user meets it: a real ``bridgekit run`` process between a real Synapse and a
(tiny, echoing) remote network.

Stories:
- alice speaks in a room; the bridge's ghost joins and answers, with the massaged timestamp;
- the bridge is SIGKILLed right after acknowledging 100 events: after a restart each is handled
  exactly once;
- Synapse is told "500" for a transaction the bridge did store: its retry is not handled twice;
- the homeserver rate-limits the ghost (429 with retry_after_ms): every answer waits and lands once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess, bridgekit_command
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.servers.fault_proxy import FaultProxy
from tests.support.echo_connector import ECHO_DELAY_MS

pytestmark = pytest.mark.integration

TXN_PATH = "/_matrix/app/v1/transactions/"

StartBridge = Callable[[str], Awaitable[tuple[BridgeProcess, AppserviceSlot]]]


@pytest.fixture
def start_bridge(synapse: SynapseHarness, run_bridge: RunBridge) -> StartBridge:
    """``await start_bridge("main")``: a bridge process for that slot with the echo connector."""

    async def start(slot_name: str) -> tuple[BridgeProcess, AppserviceSlot]:
        slot = synapse.slot(slot_name)
        bridge = await run_bridge(slot, "tests.support.echo_connector:EchoConnector", logging={"level": "INFO"})
        return bridge, slot

    return start


@dataclass
class Story:
    """A running bridge for a slot, alice, and a room where she has invited the bridge bot."""

    bridge: BridgeProcess
    slot: AppserviceSlot
    alice: MatrixTestClient
    room_id: str

    @property
    def ghost(self) -> str:
        return self.slot.ghost_user_id("echo")


async def begin_story(start_bridge: StartBridge, make_matrix_user: MakeMatrixUser, slot_name: str) -> Story:
    bridge, slot = await start_bridge(slot_name)
    alice = await make_matrix_user("alice")
    return Story(bridge, slot, alice, await room_with_bridge_bot(alice, slot))


async def room_with_bridge_bot(alice: MatrixTestClient, slot: AppserviceSlot) -> str:
    """alice makes a room and invites the bridge bot, which joins (the echo connector accepts)."""
    room_id = await alice.create_room(name="bridged", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    return room_id


def is_echo_from(ghost: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("sender") == ghost and e.get("type") == "m.room.message"


def echoes(events: list[dict[str, Any]], ghost: str) -> list[str]:
    return [e["content"]["body"] for e in events if e.get("sender") == ghost and e.get("type") == "m.room.message"]


async def wait_idle(bridge: BridgeProcess, within: float = 30.0) -> dict[str, Any]:
    """Poll /health until no event is queued or being handled; its details then."""
    async with httpx.AsyncClient() as http:

        async def idle() -> dict[str, Any]:
            details: dict[str, Any] = (await http.get(f"{bridge.metrics_url}/health")).json()
            inbox = details["inbox"]
            assert inbox["queued_events"] == 0 and inbox["active_rooms"] == 0, f"still busy: {inbox}"  # noqa: PT018
            return details

        return await eventually(idle, timeout=within, what="the bridge's inbox to be idle", interval=0.1)


async def test_alice_speaks_and_the_ghost_answers_with_the_massaged_timestamp(
    start_bridge: StartBridge, make_matrix_user: MakeMatrixUser
) -> None:
    story = await begin_story(start_bridge, make_matrix_user, "main")
    alice, room_id, ghost = story.alice, story.room_id, story.ghost

    said = await alice.send_text(room_id, "hello bridge")
    original = await alice.get_event(room_id, said)
    answer = await alice.wait_for_event(room_id, is_echo_from(ghost))

    assert answer["content"]["body"] == "echo: hello bridge"
    assert answer["content"]["m.mentions"] == {}
    assert answer["origin_server_ts"] == original["origin_server_ts"] + ECHO_DELAY_MS
    assert ghost in await alice.joined_members(room_id)


async def test_sigkill_right_after_acknowledging_100_events_loses_and_doubles_nothing(
    start_bridge: StartBridge, make_matrix_user: MakeMatrixUser
) -> None:
    story = await begin_story(start_bridge, make_matrix_user, "main")
    bridge, slot, alice, room_id, ghost = story.bridge, story.slot, story.alice, story.room_id, story.ghost
    run = secrets.token_hex(3)
    now = int(time.time() * 1000)
    events = [
        {
            "event_id": f"$kill-{run}-{i}", "room_id": room_id, "sender": alice.user_id,
            "type": "m.room.message", "origin_server_ts": now + i,
            "content": {"msgtype": "m.text", "body": f"kill {i}"},
        }
        for i in range(100)
    ]
    # The test plays the homeserver: one 100-event transaction, then SIGKILL at once.
    async with httpx.AsyncClient() as http:
        acknowledged = await http.put(
            f"{bridge.base_url}{TXN_PATH}kill-{run}",
            content=json.dumps({"events": events}),
            headers={"Authorization": f"Bearer {slot.hs_token}"},
        )
    assert acknowledged.status_code == 200
    await bridge.kill()

    await bridge.start_ready()
    await alice.wait_for_events(
        room_id, lambda e: is_echo_from(ghost)(e) and e["content"].get("body", "").startswith("echo: kill"),
        100, timeout=120,
    )
    await wait_idle(bridge)
    answers = echoes(await alice.room_messages(room_id), ghost)
    assert sorted(answers) == sorted(f"echo: kill {i}" for i in range(100))  # each exactly once
    assert answers == [f"echo: kill {i}" for i in range(100)]  # and in order


async def test_a_transaction_retried_after_a_500_is_handled_once(
    start_bridge: StartBridge, make_matrix_user: MakeMatrixUser, synapse: SynapseHarness
) -> None:
    slot = synapse.slot("faulty")
    async with FaultProxy(slot.bridge_url, slot.port) as proxy:
        story = await begin_story(start_bridge, make_matrix_user, "faulty")
        bridge, alice, room_id, ghost = story.bridge, story.alice, story.room_id, story.ghost
        before = proxy.count(TXN_PATH)
        # The bridge stores the transaction, but Synapse is told it failed and retries it.
        proxy.fail_next(1, 500, forward_first=True, path_prefix=TXN_PATH)
        await alice.send_text(room_id, "only once, please")
        await alice.wait_for_event(room_id, is_echo_from(ghost), timeout=60)
        failed = next(r for r in proxy.log[before:] if r.path.startswith(TXN_PATH) and r.fault == "fail")
        retried_at = [r for r in proxy.log if r.path == failed.path and r.status == 200]
        if not retried_at:
            await proxy.wait_for_requests(failed.path, 2, timeout=60)
        health = await wait_idle(bridge)
        answers = echoes(await alice.room_messages(room_id), ghost)
        assert answers == ["echo: only once, please"]
        assert health["inbox"]["duplicate_transactions"] >= 1


async def test_rate_limited_sends_wait_for_retry_after_and_land_once(
    start_bridge: StartBridge, make_matrix_user: MakeMatrixUser
) -> None:
    story = await begin_story(start_bridge, make_matrix_user, "ratelimited")
    bridge, alice, room_id, ghost = story.bridge, story.alice, story.room_id, story.ghost
    for i in range(8):
        await alice.send_text(room_id, f"burst {i}")
    await alice.wait_for_events(room_id, is_echo_from(ghost), 8, timeout=90)
    await wait_idle(bridge)
    answers = echoes(await alice.room_messages(room_id), ghost)
    assert answers == [f"echo: burst {i}" for i in range(8)]
    # Synapse really did push back (rc_message is 0.5/s, burst 3 for this appservice's users).
    assert "failed (429)" in bridge.log_tail(400)


async def test_sigterm_shuts_down_cleanly(start_bridge: StartBridge) -> None:
    bridge, _slot = await start_bridge("main")
    assert await bridge.stop() == 0
    assert "bridgekit stopped" in bridge.log_tail(20)


async def test_doctor_finds_everything_in_order(start_bridge: StartBridge) -> None:
    bridge, _slot = await start_bridge("main")
    doctor = await asyncio.create_subprocess_exec(
        *bridgekit_command(), "doctor", "-c", str(bridge.config_path),
        env=bridge.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(doctor.communicate(), 60)
    report = output.decode()
    assert doctor.returncode == 0, report
    assert "FAIL" not in report
    assert "ping" in report.lower()
