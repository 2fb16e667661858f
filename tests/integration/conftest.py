"""The end-to-end tests' own fixture beside bridgekit's pytest plugin (``synapse``, ``slot``,
``run_bridge``...): bridgekit's Matrix client as the main slot's appservice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bridgekit.ids import UserID
from bridgekit.matrix import MatrixClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import SynapseHarness
from tests.support.memory import InMemoryState


@pytest.fixture
async def client(synapse: SynapseHarness, slot: AppserviceSlot) -> AsyncIterator[MatrixClient]:
    """bridgekit's Matrix client as the main slot's appservice (memory kept in a dict)."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield MatrixClient(
            http, homeserver_url=synapse.url, as_token=slot.as_token,
            bot_user_id=UserID(slot.bot_user_id), memory=InMemoryState(),
        )
