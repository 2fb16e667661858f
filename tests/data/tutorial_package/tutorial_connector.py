"""A relay connector for chatnet, a test network standing in for yours (docs/connectors.md, step 1)."""

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel

from bridgekit import BridgeContext, ConnectorBase, MessageID, OutgoingMessage, RemoteMessage, RoomID, SessionKind
from bridgekit.testing.chatnet import ChatnetClient


class RelaySettings(BaseModel):
    server: str  # host:port of the chatnet server
    bot_nick: str = "bridgebot"


@dataclass
class BotSession:
    client: ChatnetClient
    kind = SessionKind.BOT

    async def send(self, message: OutgoingMessage) -> MessageID:
        return MessageID(await self.client.say(message.chat_id, message.text))


class RelayConnector(ConnectorBase[RelaySettings]):
    Settings = RelaySettings

    def __init__(self, ctx: BridgeContext) -> None:
        super().__init__(ctx)  # keeps self.ctx, self.name (= ctx.name), self.settings (= ctx.settings)
        self.bot = BotSession(ChatnetClient(self.settings.bot_nick))
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        host, _, port = self.settings.server.partition(":")
        await self.bot.client.connect(host, int(port))
        for chat in await self.ctx.portal_chats():
            self.bot.client.join(chat)
        self.tasks.append(asyncio.create_task(self.listen()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.bot.client.close()

    async def relay_session(self) -> BotSession:
        return self.bot

    async def portal_linked(self, chat_id: str, room_id: RoomID) -> None:
        self.bot.client.join(chat_id)  # to hear what is said there

    async def portal_unlinked(self, chat_id: str) -> None:
        pass  # chatnet has no way to leave a chat

    async def listen(self) -> None:
        while True:
            said = await self.bot.client.heard.get()
            if said["nick"] != self.bot.client.nick:  # not a line the bot relayed, coming back
                await self.ctx.emit(RemoteMessage(chat_id=said["chat"], message_id=said["id"],
                                                  sender_id=said["nick"], text=said["text"]))
