"""An IRC server that cannot be reached when the bridge starts does not stop the bridge: it becomes
ready, serves Matrix (the management room answers), shows the network as retrying in ``/health``,
``status`` and ``doctor``, and connects once the server is up. A real Synapse, a real
``bridgekit run`` with the IRC connector, and a real InspIRCd started on the port late."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess, bridgekit_command
from bridgekit.testing.matrix_steps import management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration


@pytest.fixture
def late_ircd(tmp_path: Path) -> Iterator[InspIRCd]:
    """InspIRCd with its port reserved and its config written, not started: connections are refused."""
    if not InspIRCd.available():
        pytest.skip("inspircd is not installed: run scripts/setup as root")
    server = InspIRCd(tmp_path / "ircd")
    server.write_config()
    try:
        yield server
    finally:
        server.stop()


async def connection(bridge: BridgeProcess, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        body = (await http.get(f"{bridge.metrics_url}/health")).json()
    status: dict[str, Any] = body["connector_status"][name]
    return status


async def doctor(bridge: BridgeProcess) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *bridgekit_command(), "doctor", "-c", str(bridge.config_path), env=bridge.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, output.decode()


async def webhook_posts_into_a_room(
    bridge: BridgeProcess, alice: MatrixTestClient, slot: AppserviceSlot, *, management: str
) -> None:
    room_id = await alice.create_room(invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    await alice.send_text(room_id, "!bk webhook create news")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Created webhook 'news'"))
    private = await alice.wait_for_event(management, notice(slot.bot_user_id, "URL"))
    found = re.search(r"URL[^:]*: (\S+)", private["content"]["body"])
    assert found is not None, private
    path = found.group(1)
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{bridge.public_base_url}{path}", json={"text": "while IRC is down"})
    assert answer.status_code in (200, 202), answer.text
    await alice.wait_for_event(room_id, lambda e: "while IRC is down" in str(e["content"].get("body")))


async def test_an_unreachable_irc_server_is_retried_and_shown_while_the_bridge_serves(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    late_ircd: InspIRCd, tmp_path: Path,
) -> None:
    name, where = slot.connector, f"{late_ircd.host}:{late_ircd.port}"
    bridge = await run_bridge(
        slot, "irc",
        connector={"server": late_ircd.host, "port": late_ircd.port, "tls": False, "lines_per_second": 0,
                   "bot_nick": f"bridge{secrets.token_hex(2)}"},
        permissions={synapse.server_name: "admin"},
        connectors={"webhook": {"factory": "bridges.webhook.connector:WebhookConnector",
                                "ghost_prefix": slot.ghost_prefix,
                                "database": f"sqlite+aiosqlite:///{tmp_path / 'webhook.db'}"}},
    )  # ready: the IRC server's absence did not stop the start

    async def retrying() -> dict[str, Any]:
        status = await connection(bridge, name)
        assert status["state"] == "transient-disconnect", status
        assert f"cannot reach {where}" in (status["detail"] or ""), status
        return status

    await eventually(retrying, timeout=30, what="/health to show the IRC network retrying")
    code, output = await doctor(bridge)
    assert code == 1, output
    assert f"FAIL  connector {name}: transient-disconnect: cannot reach {where}" in output
    assert "the bridge keeps retrying" in output

    # Matrix works meanwhile: the management room answers, and its status says why.
    alice = await make_matrix_user("alice")
    room_id = await management_room(alice, slot)
    await alice.send_text(room_id, "status")
    status = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Your permission level"))
    assert f"{name} bot: transient-disconnect, cannot reach {where}" in status["content"]["body"]
    # And the other connector works: a webhook posts into a room.
    await webhook_posts_into_a_room(bridge, alice, slot, management=room_id)

    late_ircd.start()  # the server comes up on the port the bridge keeps trying

    async def connected() -> bool:
        status = await connection(bridge, name)
        assert status["state"] == "connected", status
        return True

    await eventually(connected, timeout=90, what="the bridge to connect once the IRC server is up")
    code, output = await doctor(bridge)
    assert f"OK    connector {name}: connected" in output, output
    assert bridge.running
    assert "Traceback" not in bridge.log_tail(10_000)
