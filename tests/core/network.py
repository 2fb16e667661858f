"""A remote network for the middle layer's tests: a connector offering the relay, virtual users
and puppet logins, whose sessions record what reached the network.

What a test asserts on is :attr:`FakeNetwork.seen`: the lines people on the network saw, each
with the identity that said it (``bot:relaybot``, ``virtual:<name>[m]``, ``puppet:<nick>``), and the typing and
read markers they were shown.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bridgekit.connector import (
    LoginField,
    LoginFlow,
    OutgoingMessage,
    PortalInfo,
    PuppetLogin,
    SessionKind,
    UseRelay,
)
from bridgekit.events import RemoteEvent, RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID, UserID

NET = "net"


@dataclass(frozen=True, slots=True)
class Seen:
    """Something people on the network saw: ``what`` in ``chat`` by ``who`` (``kind:nick``)."""

    chat: str
    who: str
    what: str


@dataclass
class FakeNetwork:
    """The connector. ``emit`` is how it tells the core about network events (set by the wiring)."""

    virtual_users: bool = False
    relay_connected: bool = True
    echo_before_returning: bool = False
    """The network announces a message (its echo) before ``send`` returns its ID, as IRC servers
    with echo-message do; the connector emits that echo like any other message."""
    chats: tuple[str, ...] = ("chat", "other")
    full: str | None = None
    """When set, ``virtual_session`` answers ``UseRelay`` with this reason (a connection limit)."""
    name: str = NET
    emit: Callable[[RemoteEvent], Awaitable[object]] | None = None
    seen: list[Seen] = field(default_factory=list)
    login_flows: tuple[LoginFlow, ...] = (
        LoginFlow("password", "password", (LoginField("password", "Password?", secret=True),)),
    )
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what the core sees of the connector --------------------------------------------------

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def relay_session(self) -> NetworkSession | None:
        return NetworkSession(self, SessionKind.BOT, "relaybot") if self.relay_connected else None

    async def virtual_session(self, user_id: UserID, display_name: str) -> NetworkSession:
        if self.full is not None:
            raise UseRelay(self.full)
        return NetworkSession(self, SessionKind.VIRTUAL, f"{display_name}[m]")

    async def login(self, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> PuppetLogin:
        nick = user_id[1:].split(":")[0]
        return PuppetLogin(RemoteUserID(nick), nick.title(), {"password": answers["password"]})

    async def connect_puppet(self, user_id: UserID, login: PuppetLogin) -> NetworkSession:
        return NetworkSession(self, SessionKind.PUPPET, login.remote_user_id)

    async def logout(self, user_id: UserID, login: PuppetLogin) -> None: ...

    async def portal_for_alias(self, alias_suffix: str) -> PortalInfo | None:
        chat = alias_suffix.lower()
        return PortalInfo(ChatID(chat)) if chat in self.chats else None

    # -- what a test reads ---------------------------------------------------------------------

    def lines(self, chat: str = "chat") -> list[str]:
        """``who: text`` of every message said in ``chat``, in order."""
        return [f"{seen.who}: {seen.what}" for seen in self.seen if seen.chat == chat]

    def next_id(self) -> str:
        return f"m{next(self._ids)}"


class NetworkSession:
    """One identity on the network; everything it does lands in ``network.seen``."""

    def __init__(self, network: FakeNetwork, kind: SessionKind, nick: str) -> None:
        self.network = network
        self.kind = kind
        self.nick = nick

    @property
    def who(self) -> str:
        return f"{self.kind.value}:{self.nick}"

    async def send(self, message: OutgoingMessage) -> MessageID:
        message_id = MessageID(self.network.next_id())
        self.network.seen.append(Seen(message.chat_id, self.who, message.text))
        if self.network.echo_before_returning and self.network.emit is not None:
            await self.network.emit(RemoteMessage(
                chat_id=message.chat_id, message_id=message_id, sender_id=RemoteUserID(self.nick), text=message.text,
            ))
        return message_id

    async def edit(self, chat_id: str, message_id: str, message: OutgoingMessage) -> None:
        self.network.seen.append(Seen(chat_id, self.who, f"(edit of {message_id}) {message.text}"))

    async def delete(self, chat_id: str, message_id: str) -> None:
        self.network.seen.append(Seen(chat_id, self.who, f"(deleted {message_id})"))

    async def react(self, chat_id: str, message_id: str, emoji: str) -> None:
        self.network.seen.append(Seen(chat_id, self.who, f"(reacted {emoji} to {message_id})"))

    async def unreact(self, chat_id: str, message_id: str, emoji: str) -> None:
        self.network.seen.append(Seen(chat_id, self.who, f"(took back {emoji} on {message_id})"))

    async def set_typing(self, chat_id: str, typing: bool) -> None:
        self.network.seen.append(Seen(chat_id, self.who, "(typing)" if typing else "(stopped typing)"))

    async def mark_read(self, chat_id: str, message_id: str) -> None:
        self.network.seen.append(Seen(chat_id, self.who, f"(read up to {message_id})"))

    async def close(self) -> None: ...
