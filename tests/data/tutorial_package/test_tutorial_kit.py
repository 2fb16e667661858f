"""The tutorial connector's conformance test, as its author writes it (docs/connectors.md, section 9):
the fixtures (``slot``, ``run_bridge``, ``chatnet``, ``make_matrix_user``) come from bridgekit's
pytest plugin, installed with ``pip install 'bridgekit[testing]'``."""

from collections.abc import AsyncIterator

import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.chatnet import ChatnetServer
from bridgekit.testing.chatnet_driver import ChatnetDriver
from bridgekit.testing.conformance import ConformanceEnv, ConnectorConformance
from bridgekit.testing.matrix_steps import portal_env
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge


class TestTutorialConnector(ConnectorConformance):
    factory = "tutorial_connector:RelayConnector"

    @pytest.fixture
    async def conformance_env(
        self, slot: AppserviceSlot, run_bridge: RunBridge, chatnet: ChatnetServer, make_matrix_user: MakeMatrixUser
    ) -> AsyncIterator[ConformanceEnv]:
        bridge = await run_bridge(
            slot, self.factory, connector={"server": f"127.0.0.1:{chatnet.port}"},
            permissions={slot.server_name: "admin"},  # the test user may link rooms
        )
        alice: MatrixTestClient = await make_matrix_user("alice")
        driver = ChatnetDriver(chatnet)
        try:
            yield await portal_env(alice, slot, "tutorial", driver, bridge=bridge)
        finally:
            await driver.close()
