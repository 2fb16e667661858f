"""A network whose keeper's Redis is out of reach when the bridge starts does not stop the bridge:
it becomes ready, its other network connects, ``/health`` shows the kept one waiting for Redis,
and once Redis (and the keeper) are up the kept network pairs and connects. A real ``bridgekit
run`` with two IRC networks, a real InspIRCd, and a real Redis started late on its reserved port."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.integration.test_irc_unreachable import connection
from tests.keeper_fixtures import StartKeeper
from tests.servers.ircd import InspIRCd
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
def late_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis whose port is reserved, not yet listened on: connections are refused."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed: run scripts/setup test as root")
    server = RedisServer(tmp_path / "redis")
    server.reserve_port()
    try:
        yield server
    finally:
        server.stop()


async def test_a_keepers_redis_down_at_start_waits_while_the_rest_of_the_bridge_runs(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, inspircd: InspIRCd,
    late_redis: RedisServer, start_keeper: StartKeeper,
) -> None:
    network = {"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0}
    kept_bot = f"kept{secrets.token_hex(2)}"
    bridge = await run_bridge(
        slot, "irc", connector={**network, "bot_nick": kept_bot, "alias_prefix": "_bk_kept_",
                                "keeper": {"redis_url": late_redis.url}},
        connectors={"plain": {**network, "factory": "irc", "bot_nick": f"plain{secrets.token_hex(2)}",
                              "ghost_prefix": slot.ghost_prefix, "alias_prefix": "_bk_plain_"}},
        permissions={synapse.server_name: "admin"},
    )  # ready: the kept network's Redis being down did not stop the start

    async def waiting_for_redis() -> bool:
        plain, kept = await connection(bridge, "plain"), await connection(bridge, slot.connector)
        assert plain["state"] == "connected", plain
        assert kept["state"] == "transient-disconnect", kept
        assert f"Redis at {late_redis.host}:{late_redis.port} is out of reach" in (kept["detail"] or ""), kept
        return True

    await eventually(waiting_for_redis, timeout=30, what="/health to show the kept network waiting for Redis")

    late_redis.start()
    keeper = start_keeper(late_redis.url)

    async def paired() -> bool:
        status = await connection(bridge, slot.connector)
        assert status["state"] == "connected", status
        return True

    await eventually(paired, timeout=90, what="the kept network to pair and connect once Redis is up")
    assert f"connected as {kept_bot}" in keeper.log()  # its bot's connection is the keeper's
    assert bridge.running
    assert "Traceback" not in bridge.log_tail(10_000)
