"""A connector installed as a package of its own is found by its entry point and runs."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.synapse_harness import SynapseHarness

pytestmark = pytest.mark.integration

PACKAGE = Path(__file__).resolve().parents[1] / "data" / "thirdparty_connector"


async def test_a_separately_installed_connector_is_discovered_by_entry_point(
    synapse: SynapseHarness, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    source = tmp_path / "package"  # a copy: building writes into the source tree
    shutil.copytree(PACKAGE, source)
    install = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--target", str(target), str(source),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(install.communicate(), 180)
    assert install.returncode == 0, output.decode()

    slot = synapse.slot("main")
    # The section names the connector only: no factory, no import path. The entry point does it.
    config = slot.write_bridge_config(
        tmp_path / "tp.yaml", f"sqlite+aiosqlite:///{tmp_path / 'tp.db'}",
        connectors={slot.connector: {"enabled": False}, "thirdparty": {"ghost_prefix": "_bk_tp_"}},
    )
    bridge = BridgeProcess(config, env={"PYTHONPATH": str(target)})
    await bridge.start_ready()
    try:
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{bridge.metrics_url}/health")).json()
        assert health["connectors"] == ["thirdparty"]
        assert "third-party connector started (found by entry point)" in bridge.log_tail(100)
    finally:
        await bridge.stop()
