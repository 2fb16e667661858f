"""The conformance kit (bridgekit.testing.conformance) on the real Synapse: the example connector
passes it, in relay mode and with virtual users; a deliberately broken connector fails it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.conformance import ConformanceEnv, ConnectorConformance, check_echo_suppression
from bridgekit.testing.matrix_steps import portal_env
from bridgekit.testing.memonet_client import MemonetClient, MemonetDriver
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness

pytestmark = pytest.mark.integration

CHAT = "conformance"
TOKEN = secrets.token_urlsafe(16)

MEMONET = "bridgekit.testing.memonet:MemonetConnector"
MakeEnv = Callable[..., Awaitable[ConformanceEnv]]


@pytest.fixture
async def make_env(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser
) -> AsyncIterator[MakeEnv]:
    clients: list[MemonetClient] = []

    async def make(factory: str = MEMONET, *, virtual: bool = False) -> ConformanceEnv:
        bridge: BridgeProcess = await run_bridge(
            slot, factory, connector={"control_token": TOKEN, "chats": [CHAT], "virtual": virtual},
            permissions={synapse.server_name: "admin"},
            inbox={"max_attempts": 3},  # a refused message is given up on (and shown) within seconds
        )
        client = MemonetClient(bridge.public_base_url, TOKEN)
        clients.append(client)
        alice = await make_matrix_user("alice")
        return await portal_env(alice, slot, CHAT, MemonetDriver(client), bridge=bridge, relay=not virtual)

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


class TestMemonetRelay(ConnectorConformance):
    @pytest.fixture
    async def conformance_env(self, make_env: MakeEnv) -> ConformanceEnv:
        return await make_env()


class TestMemonetVirtualUsers(ConnectorConformance):
    @pytest.fixture
    async def conformance_env(self, make_env: MakeEnv) -> ConformanceEnv:
        return await make_env(virtual=True)


async def test_the_kit_catches_a_connector_that_bridges_its_own_echoes(make_env: MakeEnv) -> None:
    env = await make_env("tests.support.broken_memonet:BrokenMemonetConnector")
    with pytest.raises(AssertionError, match="echo came back into the room"):
        await check_echo_suppression(env)
