"""The conformance kit's remote driver for chatnet (``bridgekit/testing/chatnet.py``): kept apart
from the network itself, which connectors import in the bridge process (this imports the kit, and
the kit pytest)."""

from __future__ import annotations

from bridgekit.testing.chatnet import ChatnetClient, ChatnetServer
from bridgekit.testing.conformance import SeenMessage


class ChatnetDriver:
    """The conformance kit's :class:`~bridgekit.testing.conformance.RemoteDriver` for chatnet:
    people on chatnet, each with a connection of their own; what the network saw, from its server.
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
