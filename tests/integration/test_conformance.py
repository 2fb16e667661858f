"""The conformance kit (bridgekit.testing.conformance) on the real Synapse: the example connector
passes it, in relay mode and with virtual users; a deliberately broken connector fails it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridgekit.testing.conformance import ConformanceEnv, ConnectorConformance, check_echo_suppression
from bridgekit.testing.memonet_client import MemonetClient, MemonetDriver
from tests.servers.bridge_process import BridgeProcess
from tests.servers.synapse import AppserviceSlot
from tests.synapse_fixtures import MakeMatrixUser, RunBridge, SynapseHarness

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
        room_id = await alice.create_room(name="conformance", invite=[slot.bot_user_id])
        await alice.wait_for_membership(room_id, slot.bot_user_id)
        await alice.send_text(room_id, f"!bk link {slot.connector} {CHAT}")
        await alice.wait_for_event(room_id, lambda e: "now the portal" in e.get("content", {}).get("body", ""))
        name = alice.user_id.split(":")[0].lstrip("@")
        return ConformanceEnv(
            user=alice, room_id=room_id, chat=CHAT, remote=MemonetDriver(client), remote_sender="bob",
            ghost_of=lambda sender: slot.ghost_user_id(f"{slot.connector}_{sender}"),
            bot_user_id=slot.bot_user_id,
            shown=(lambda text: text) if virtual else (lambda text: f"<{name}> {text}"),
            stop_bridge=bridge.kill, start_bridge=bridge.start_ready,
        )

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
