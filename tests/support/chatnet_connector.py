"""A connector for chatnet (bridgekit/testing/chatnet.py) offering the relay and virtual-user modes.

Settings (its config section): ``server`` ("host:port"), ``chats`` (chats the bot joins at
start, so it hears them), ``bot_nick``, and ``virtual`` (true: each Matrix user who speaks gets a
chatnet connection of their own, nick ``<name>[m]``). The bot relays for everyone else. What
chatnet users say in a joined chat is emitted to the core; the network's echoes of our own
sessions' messages are recognised by nick and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import BaseModel

from bridgekit import BridgeContext, MessageID, OutgoingMessage, RemoteMessage, SessionKind, UserID
from bridgekit.testing.chatnet import ChatnetClient


class ChatnetSettings(BaseModel):
    server: str
    """host:port of the chatnet server."""
    chats: list[str] = []
    bot_nick: str = "bridgebot"
    virtual: bool = False


class ChatnetSession:
    def __init__(self, kind: SessionKind, client: ChatnetClient) -> None:
        self.kind = kind
        self.client = client
        self._joined: set[str] = set()

    async def send(self, message: OutgoingMessage) -> MessageID:
        if message.chat_id not in self._joined:
            self.client.join(message.chat_id)
            self._joined.add(message.chat_id)
        return MessageID(await self.client.say(message.chat_id, message.text))


class ChatnetConnector:
    Settings = ChatnetSettings

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self.settings: ChatnetSettings = ctx.settings
        self._host, _, port = self.settings.server.partition(":")
        self._port = int(port)
        self.virtual_users = self.settings.virtual
        self._bot: ChatnetSession | None = None
        self._virtual: dict[UserID, ChatnetSession] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        bot = ChatnetClient(self.settings.bot_nick)
        await bot.connect(self._host, self._port)
        self._bot = ChatnetSession(SessionKind.BOT, bot)
        for chat in self.settings.chats:
            bot.join(chat)
            self._bot._joined.add(chat)
        self._listener = asyncio.create_task(self._listen(bot))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for session in [*self._virtual.values(), *([self._bot] if self._bot else [])]:
            await session.client.close()

    async def relay_session(self) -> ChatnetSession | None:
        return self._bot

    async def virtual_session(self, user_id: UserID, display_name: str) -> ChatnetSession:
        session = self._virtual.get(user_id)
        if session is None:
            client = ChatnetClient(f"{display_name}[m]")
            await client.connect(self._host, self._port)
            session = self._virtual[user_id] = ChatnetSession(SessionKind.VIRTUAL, client)
        return session

    def _own_nicks(self) -> set[str]:
        sessions = [*self._virtual.values(), *([self._bot] if self._bot else [])]
        return {session.client.nick for session in sessions}

    async def _listen(self, bot: ChatnetClient) -> None:
        while True:
            said = await bot.heard.get()
            if said["nick"] in self._own_nicks():
                continue  # the network echoing what our sessions said
            await self.ctx.emit(RemoteMessage(
                chat_id=said["chat"], message_id=said["id"], sender_id=said["nick"], text=said["text"],
            ))
