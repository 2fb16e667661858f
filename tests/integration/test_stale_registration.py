"""A homeserver with a stale registration (its hs_token is not the bridge's): the bridge says so in
one WARNING with what to do, not one line per refused request, and ``bridgekit doctor``'s ping
names it. A real Synapse and a real ``bridgekit run``."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from bridgekit.testing.bridge_process import BridgeProcess, bridgekit_command
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import SynapseHarness
from bridgekit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def refused_pings(log: str) -> int:
    return sum(1 for line in log.splitlines() if '/_matrix/app/v1/ping" 403' in line)


async def test_a_burst_of_refused_pushes_is_one_warning_and_doctor_names_the_stale_registration(
    slot: AppserviceSlot, synapse: SynapseHarness, tmp_path: Path
) -> None:
    config = slot.write_bridge_config(tmp_path / "stale.yaml", f"sqlite+aiosqlite:///{tmp_path / 'stale.db'}",
                                      with_registration=False, connectors={slot.connector: {"enabled": False}})
    # The bridge's hs_token was renewed; Synapse still has the registration with the old one.
    env = {**slot.bridge_env(), "BRIDGEKIT_HS_TOKEN": f"renewed-{secrets.token_urlsafe(24)}"}
    bridge = BridgeProcess(config, env=env)
    await bridge.start_ready()
    try:
        # The start-up ping asks Synapse to call the bridge, retried with backoff: each call is refused.
        await eventually(lambda: refused_pings(bridge.log_tail(10_000)) >= 3, timeout=60,
                         what="three pushes from the homeserver refused with 403")
        doctor = await asyncio.create_subprocess_exec(
            *bridgekit_command(), "doctor", "-c", str(config), env={**bridge.env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(doctor.communicate(), 60)
    finally:
        await bridge.stop()
    log = bridge.log_tail(10_000)
    warnings = [line for line in log.splitlines() if "stale registration" in line]
    assert len(warnings) == 1, warnings  # one, however many were refused
    assert " WARNING " in warnings[0]
    assert "Install the registration file" in warnings[0]  # what to do
    assert "Traceback" not in log

    (ping,) = [line for line in output.decode().splitlines() if " ping:" in line]
    assert doctor.returncode == 1
    assert ping.startswith("FAIL")
    assert "refused the homeserver's hs_token (403)" in ping
    assert "stale registration" in ping
