"""The ``chatnet`` fixture: a real chat server on loopback (``tests/servers/chatnet.py``) for the
stories that bridge a network through the chatnet connector."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.servers.chatnet import ChatnetServer


@pytest.fixture
async def chatnet() -> AsyncIterator[ChatnetServer]:
    server = ChatnetServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
