"""``/metrics`` of a real `bridgekit run` (the example connector memonet, the real Synapse): after
a message each way both latency histograms have counted it, the Matrix calls are there by endpoint
template, the memonet bot's session by state, the process metrics too; and with
``logging.format: json`` the bridge's log lines are JSON records carrying the event ID."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridgekit.testing.matrix_steps import linked_portal
from bridgekit.testing.memonet_client import MemonetClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually

pytestmark = pytest.mark.integration

CHAT = "lobby"
TOKEN = secrets.token_urlsafe(16)
FACTORY = "bridgekit.testing.memonet:MemonetConnector"
CONNECTOR = {"control_token": TOKEN, "chats": [CHAT]}
SEND = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    response = await http.get(url + "/metrics")
    assert response.status_code == 200
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def count(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_of_a_running_bridge_move_with_a_message_each_way(
    slot: AppserviceSlot, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser, synapse: SynapseHarness,
) -> None:
    bridge = await run_bridge(slot, FACTORY, connector=CONNECTOR, permissions={synapse.server_name: "admin"},
                              logging={"format": "json", "level": "DEBUG"})
    network = slot.connector
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot, CHAT, name="lobby on memonet")
    memonet = MemonetClient(bridge.public_base_url, TOKEN)
    async with httpx.AsyncClient(timeout=10) as http:
        before = await scrape(http, bridge.metrics_url)
        try:
            event_id = await alice.send_text(room_id, "to the network")
            await memonet.wait_for(CHAT, lambda post: post["text"].endswith("to the network"))
            await memonet.say(CHAT, "bob", "to Matrix")
            await alice.wait_for_events(room_id, lambda e: e.get("content", {}).get("body") == "to Matrix", 1)

            async def moved() -> Samples:
                samples = await scrape(http, bridge.metrics_url)
                both = all(count(samples, f"bridgekit_{way}_seconds_count", network=network) >
                           count(before, f"bridgekit_{way}_seconds_count", network=network)
                           for way in ("matrix_to_remote", "remote_to_matrix"))
                return samples if both else {}  # empty: not yet

            samples: Samples = await eventually(moved, timeout=30, what="both latency histograms counting a message")
        finally:
            await memonet.aclose()

    assert count(samples, "bridgekit_matrix_requests_total", method="PUT", endpoint=SEND, status="200") >= 1
    assert count(samples, "bridgekit_sessions", network=network, state="connected") == 1
    assert count(samples, "bridgekit_outbox_queued_events") == 0
    assert count(samples, "process_resident_memory_bytes") > 0
    assert not any(room_id in value for _name, labels in samples for _key, value in labels)

    records = [json.loads(line) for line in bridge.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(record.get("event_id") == event_id and record.get("network") == network for record in records), (
        "no JSON log record names the event sent")
