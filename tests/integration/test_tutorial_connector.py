"""The tutorial's first step (docs/connectors.md quotes tests/data/tutorial_connector.py whole) is a
working connector: on Synapse, with a real ``bridgekit run`` and chatnet, it passes the conformance
kit's checks of messages both ways and of echo suppression."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridgekit.testing.conformance import ConformanceEnv, SeenMessage, check_echo_suppression, check_order_under_load
from tests.servers.chatnet import ChatnetClient, ChatnetServer
from tests.servers.synapse import AppserviceSlot
from tests.support.matrix_steps import linked_portal
from tests.synapse_fixtures import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

CHAT = "tutorial"
FACTORY = "tests.data.tutorial_connector:RelayConnector"


class ChatnetDriver:
    """People on chatnet, each with a connection of their own; what the network saw, from its server.
    chatnet has no edits, deletions or refusals: the checks that need them are not asked of it."""

    can_edit = False
    can_delete = False
    can_fail_sends = False

    def __init__(self, server: ChatnetServer) -> None:
        self._server = server
        self._people: dict[str, ChatnetClient] = {}

    async def say(self, chat: str, sender: str, text: str) -> str:
        person = self._people.get(sender)
        if person is None:
            person = self._people[sender] = ChatnetClient(sender)
            await person.connect(self._server.host, self._server.port)
            person.join(chat)
        return await person.say(chat, text)

    async def edit(self, chat: str, message_id: str, sender: str, text: str) -> None:
        raise NotImplementedError("chatnet has no edits")

    async def delete(self, chat: str, message_id: str, sender: str) -> None:
        raise NotImplementedError("chatnet has no deletions")

    async def messages(self, chat: str) -> list[SeenMessage]:
        return [SeenMessage(m.id, m.nick, m.text) for m in self._server.messages if m.chat == chat]

    async def fail_sends(self, count: int) -> None:
        raise NotImplementedError("chatnet cannot be made to refuse")

    async def close(self) -> None:
        for person in self._people.values():
            await person.close()


@pytest.fixture
async def tutorial_env(
    slot: AppserviceSlot, run_bridge: RunBridge, chatnet: ChatnetServer, make_matrix_user: MakeMatrixUser
) -> AsyncIterator[ConformanceEnv]:
    await run_bridge(
        slot, FACTORY, connector={"server": f"127.0.0.1:{chatnet.port}"},
        permissions={"localhost": "admin"},  # the test user may link rooms
    )
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot, CHAT)
    name = alice.user_id.split(":")[0].lstrip("@")
    driver = ChatnetDriver(chatnet)
    try:
        yield ConformanceEnv(
            user=alice, room_id=room_id, chat=CHAT, remote=driver, remote_sender="bob",
            ghost_of=lambda sender: slot.ghost_user_id(f"{slot.connector}_{sender}"),
            bot_user_id=slot.bot_user_id, shown=lambda text: f"<{name}> {text}",
        )
    finally:
        await driver.close()


async def test_the_tutorial_connector_suppresses_echoes(tutorial_env: ConformanceEnv) -> None:
    await check_echo_suppression(tutorial_env)


async def test_the_tutorial_connector_carries_messages_both_ways_in_order(tutorial_env: ConformanceEnv) -> None:
    await check_order_under_load(tutorial_env)
