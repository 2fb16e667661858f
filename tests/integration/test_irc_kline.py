"""A network that K-lines the bridge: the bot stops reconnecting (retrying only makes a ban worse)
and says why where operators look (``/health``), in InspIRCd's own words. Its own InspIRCd: the
K-line would shut out every other test's bridge (they share the ident ``bridge``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.integration.test_irc_unreachable import connection
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration


@pytest.fixture
def own_ircd(tmp_path: Path) -> Iterator[InspIRCd]:
    if not InspIRCd.available():
        pytest.skip("inspircd is not installed: run scripts/setup as root")
    server = InspIRCd(tmp_path / "ircd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_k_lined_bridge_stops_reconnecting_and_says_why(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, own_ircd: InspIRCd,
) -> None:
    name = slot.connector
    bridge = await run_bridge(
        slot, "irc",
        connector={"server": own_ircd.host, "port": own_ircd.port, "tls": False, "virtual_users": False,
                   "bot_nick": f"bridge{secrets.token_hex(2)}"},
        permissions={synapse.server_name: "admin"},
    )
    oper = await IrcTestClient.connect(own_ircd.host, own_ircd.port, f"oper{secrets.token_hex(2)}")
    try:
        since = oper.mark()
        oper.send_raw("OPER oper operpw")
        await oper.wait_for(lambda line: line.command == "381", since=since)
        oper.send_raw("KLINE bridge@127.0.0.1 0 :no bridges here")

        async def given_up() -> dict[str, Any]:
            status = await connection(bridge, name)
            assert status["state"] == "unknown-error", status
            return status

        status = await eventually(given_up, timeout=60, what="the bot to give up on the K-line")
        assert "banned the bridge" in status["detail"], status
        assert "[K-lined: no bridges here]" in status["detail"], status  # the server's own words
        assert "not trying again" in status["detail"], status
        assert (await connection(bridge, name))["state"] == "unknown-error"  # and it stays so
    finally:
        await oper.close()
