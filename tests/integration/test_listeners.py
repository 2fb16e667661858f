"""Listeners by resource (issue 10, item 8), on a real `bridgekit run` with the example connector
(memonet, whose control API is a connector route) and the real Synapse.

Publishing the webhook listener must not publish the Application Service API, the metrics or the
detailed health; each listener answers 404 for the others' routes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridgekit.demo.ports import PortReservation
from bridgekit.testing.matrix_steps import linked_portal
from bridgekit.testing.memonet_client import MemonetClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness

pytestmark = pytest.mark.integration

CHAT = "lobby"
TOKEN = secrets.token_urlsafe(16)
FACTORY = "bridgekit.testing.memonet:MemonetConnector"
CONNECTOR = {"control_token": TOKEN, "chats": [CHAT]}

# One route of each kind: (method, path, needs the hs_token).
APPSERVICE_ROUTES = [("POST", "/_matrix/app/v1/ping", True), ("PUT", "/_matrix/app/v1/transactions/t1", True)]
PROBES = [("GET", "/health/live", False), ("GET", "/health/ready", False)]
METRICS_ROUTES = [("GET", "/metrics", False), ("GET", "/health", False)]
CONNECTOR_ROUTES = [("GET", f"/memonet/chats/{CHAT}/messages", False)]


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    with PortReservation.acquire() as public, PortReservation.acquire() as metrics:
        yield public.port, metrics.port


def command_line(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


async def status(http: httpx.AsyncClient, base: str, route: tuple[str, str, bool], slot: AppserviceSlot) -> int:
    method, path, with_token = route
    headers = {"Authorization": f"Bearer {slot.hs_token if with_token else TOKEN}"}
    body = b'{"events":[]}' if method == "PUT" else b"{}" if method == "POST" else None
    return (await http.request(method, base + path, headers=headers, content=body)).status_code


async def test_each_listener_serves_only_its_own_routes(
    slot: AppserviceSlot, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser, ports: tuple[int, int],
    synapse: SynapseHarness,
) -> None:
    public_port, metrics_port = ports
    listeners = {"public_listen": {"port": public_port}, "metrics_listen": {"port": metrics_port}}
    bridge = await run_bridge(
        slot, FACTORY, connector=CONNECTOR, permissions={synapse.server_name: "admin"}, appservice=listeners
    )
    homeserver_side, public, metrics = bridge.base_url, bridge.public_base_url, bridge.metrics_url
    assert len({homeserver_side, public, metrics}) == 3
    served = {
        homeserver_side: APPSERVICE_ROUTES + PROBES,
        public: CONNECTOR_ROUTES,
        metrics: METRICS_ROUTES + PROBES,
    }
    every_route = APPSERVICE_ROUTES + PROBES + METRICS_ROUTES + CONNECTOR_ROUTES
    async with httpx.AsyncClient(timeout=10) as http:
        for base, own in served.items():
            for route in every_route:
                expected = 200 if route in own else 404
                assert await status(http, base, route, slot) == expected, (base, route)

    # The harness started `bridgekit run`, which went on, in the same process, under python -OO
    # (bridgekit_launch.py: scripts/setup compiled the bytecode for it): 4 MB less at rest.
    # (A PYTHONOPTIMIZE of the environment the tests run in would decide instead.)
    assert bridge.pid is not None
    argv = command_line(bridge.pid)
    assert b"run" in argv
    if "PYTHONOPTIMIZE" not in os.environ:
        assert argv[1] == b"-OO", f"{argv}: run scripts/setup (it compiles the optimised bytecode)"

    # And the bridge works through them: the homeserver delivers on one, memonet talks on another.
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot, CHAT, name="lobby on memonet")
    memonet = MemonetClient(public, TOKEN)
    try:
        await alice.send_text(room_id, "through the split listeners")
        await memonet.wait_for(CHAT, lambda post: post["text"].endswith("through the split listeners"))
    finally:
        await memonet.aclose()
    # One SIGTERM stops every listener, and the bridge's own shutdown runs to the end.
    assert await bridge.stop(deadline_s=20) == 0
    assert "bridgekit stopped" in bridge.log_tail()


async def test_unset_listeners_fall_back_for_connector_routes_never_for_metrics(
    slot: AppserviceSlot, run_bridge: RunBridge
) -> None:
    bridge = await run_bridge(slot, FACTORY, connector=CONNECTOR, appservice={"metrics_listen": {"port": None}})
    assert bridge.public_base_url == bridge.base_url
    async with httpx.AsyncClient(timeout=10) as http:
        for route in APPSERVICE_ROUTES + PROBES + CONNECTOR_ROUTES:
            assert await status(http, bridge.base_url, route, slot) == 200, route
        for route in METRICS_ROUTES:
            assert await status(http, bridge.base_url, route, slot) == 404, route
