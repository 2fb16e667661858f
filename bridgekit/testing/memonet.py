"""memonet: the example connector, bridging a small chat network that lives in the bridge's memory.

It is the code of the tutorial (docs/connectors.md) and the connector the conformance kit
(:mod:`bridgekit.testing.conformance`) is shown passing. Besides its network it uses only
``bridgekit``'s public API, and offers every mode and ability of the contract:

- **relay**: the network's ``bridgebot`` says ``<alice> hi`` for Matrix users without an identity;
- **virtual users** (``virtual: true``): each Matrix user who speaks gets a memonet nick
  ``<name>[m]`` of their own;
- **puppets**: a Matrix user logs in with a memonet account (``accounts`` in the settings) and
  speaks as it; what they say "from another client" (the control API) appears as them on Matrix;
- edits, deletions, reactions and replies both ways, and portals from alias queries
  (``#_memonet_<chat>:server`` makes the portal of ``<chat>``).

The network (:mod:`bridgekit.testing.memory_network`, standing in for a client library) has no
sockets: people "on" it act through HTTP routes the connector adds to the bridge's app
(``/memonet/...``, guarded by ``control_token``), which is how tests and curious admins drive it.
Its state is lost when the bridge stops (accounts and chats from the settings come back), which
is exactly what an example needs and no more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel

from bridgekit import (
    BridgeContext,
    ChatID,
    Command,
    CommandContext,
    CommandReply,
    LoginFailed,
    LoginField,
    LoginFlow,
    MessageID,
    OutgoingMessage,
    PermissionLevel,
    PortalInfo,
    PuppetLogin,
    RemoteChatInfo,
    RemoteDelete,
    RemoteEdit,
    RemoteMember,
    RemoteMessage,
    RemoteReaction,
    RemoteReceipt,
    RemoteTyping,
    RemoteUserID,
    SessionKind,
    SessionState,
    UserID,
)

# The network (MemoryNetwork) stands in for a client library: see bridgekit.testing.memory_network.
from bridgekit.testing.memory_network import Happening, MemoryNetwork, Post

# --- sessions -----------------------------------------------------------------------------------


class MemonetSession:
    """One identity on memonet: the bot, a Matrix user's virtual nick, or a logged-in account."""

    def __init__(self, kind: SessionKind, network: MemoryNetwork, nick: str,
                 on_close: Callable[[MemonetSession], None] | None = None) -> None:
        self.kind = kind
        self.nick = nick
        self._network = network
        self._on_close = on_close

    async def send(self, message: OutgoingMessage) -> MessageID | None:
        text = f"/me {message.text}" if message.msgtype == "m.emote" else message.text
        return MessageID(self._network.say(message.chat_id, self.nick, text, reply_to=message.reply_to,
                                           by_bridge=True).id)

    async def edit(self, chat_id: str, message_id: str, message: OutgoingMessage) -> None:
        self._network.edit(chat_id, message_id, self.nick, message.text, by_bridge=True)

    async def delete(self, chat_id: str, message_id: str) -> None:
        self._network.delete(chat_id, message_id, self.nick, by_bridge=True)

    async def react(self, chat_id: str, message_id: str, emoji: str) -> None:
        self._network.react(chat_id, message_id, self.nick, emoji, by_bridge=True)

    async def unreact(self, chat_id: str, message_id: str, emoji: str) -> None:
        self._network.react(chat_id, message_id, self.nick, emoji, removed=True, by_bridge=True)

    async def leave_chat(self, chat_id: str, reason: str | None) -> None:
        self._network.membership(chat_id, self.nick, "leave", by_bridge=True)

    async def set_topic(self, chat_id: str, topic: str) -> None:
        self._network.set_topic(chat_id, self.nick, topic, by_bridge=True)

    async def set_typing(self, chat_id: str, typing: bool) -> None:
        self._network.set_typing(chat_id, self.nick, typing, by_bridge=True)

    async def mark_read(self, chat_id: str, message_id: str) -> None:
        self._network.mark_read(chat_id, self.nick, message_id, by_bridge=True)

    async def close(self) -> None:
        if self._on_close is not None:
            self._on_close(self)


# --- the connector ------------------------------------------------------------------------------


class MemonetSettings(BaseModel):
    """The connector's config section (``connectors: {memonet: {...}}``)."""

    control_token: str | None = None
    """Bearer token of the /memonet control API; without one the API is off."""
    chats: list[str] = []
    """Chats that exist from the start."""
    accounts: dict[str, str] = {}
    """Accounts (username: password) Matrix users may log in with."""
    virtual: bool = False
    """Give each Matrix user a memonet nick of their own (virtual-user mode)."""
    bot_nick: str = "bridgebot"


class MemonetConnector:
    """The example connector: see the module docstring, and docs/connectors.md."""

    name = "memonet"
    Settings = MemonetSettings
    login_flows = (LoginFlow("password", "username and password", (
        LoginField("username", "Your memonet username?"),
        LoginField("password", "Your memonet password?", secret=True),
    )),)

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self._settings: MemonetSettings = ctx.settings
        self.network = MemoryNetwork(self._settings.accounts, self._settings.chats)
        self.virtual_users = self._settings.virtual
        self._bot = MemonetSession(SessionKind.BOT, self.network, self._settings.bot_nick)
        self._virtual_nicks: set[str] = set()
        self._happenings: asyncio.Queue[Happening] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._changes = 0

    # required ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.network.listen(self._happenings.put_nowait)
        self._pump = asyncio.create_task(self._bridge_happenings())
        await self.ctx.report_session(None, SessionState.CONNECTED)

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # sessions ---------------------------------------------------------------------------------

    async def relay_session(self) -> MemonetSession | None:
        return self._bot

    async def virtual_session(self, user_id: UserID, display_name: str) -> MemonetSession:
        nick = f"{display_name}[m]"
        self._virtual_nicks.add(nick)
        return MemonetSession(SessionKind.VIRTUAL, self.network, nick, on_close=self._virtual_closed)

    def _virtual_closed(self, session: MemonetSession) -> None:
        self._virtual_nicks.discard(session.nick)

    async def login(self, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> PuppetLogin:
        username = answers.get("username", "")
        if not hmac.compare_digest(self.network.accounts.get(username, "\0"), answers.get("password", "")):
            raise LoginFailed("wrong username or password")
        return PuppetLogin(remote_user_id=RemoteUserID(username), remote_name=username,
                           credentials={"password": answers["password"]})

    async def connect_puppet(self, user_id: UserID, login: PuppetLogin) -> MemonetSession:
        if self.network.accounts.get(login.remote_user_id) != login.credentials.get("password"):
            raise LoginFailed("memonet no longer accepts this password")
        return MemonetSession(SessionKind.PUPPET, self.network, login.remote_user_id)

    async def logout(self, user_id: UserID, login: PuppetLogin) -> None:
        """memonet has no tokens to revoke."""

    # portals from aliases ---------------------------------------------------------------------

    async def portal_for_alias(self, alias_suffix: str) -> PortalInfo | None:
        if alias_suffix not in self.network.chats:
            return None
        return PortalInfo(ChatID(alias_suffix), name=f"{alias_suffix} (memonet)",
                          topic=f"The memonet chat {alias_suffix}")

    # commands ---------------------------------------------------------------------------------

    def commands(self) -> list[Command]:
        return [Command("memonet-chats", "List the chats on memonet", self._list_chats, level=PermissionLevel.RELAY)]

    async def _list_chats(self, context: CommandContext, args: list[str]) -> CommandReply:
        chats = ", ".join(sorted(self.network.chats)) or "none"
        return CommandReply(f"memonet chats: {chats}.")

    # network -> Matrix ------------------------------------------------------------------------

    async def _bridge_happenings(self) -> None:
        while True:
            happening = await self._happenings.get()
            try:
                await self._bridge(happening)
            except Exception:
                self.ctx.log.exception("could not hand a %s in %s to the bridge", happening.kind, happening.chat)

    async def _bridge(self, happening: Happening) -> None:
        # The network's names, as the contract types them: chats, people and posts.
        post, actor, chat = happening.post, RemoteUserID(happening.actor), ChatID(happening.chat)
        own = {self._settings.bot_nick, *self._virtual_nicks}
        if happening.by_bridge and (actor in own or happening.kind != "post"):
            # Our own sessions' doings: Matrix has them already. (A puppet's post through the
            # bridge is left to the core, which knows its message ID: the network's echo.)
            return
        if happening.kind == "member":
            self._changes += 1
            await self.ctx.emit(RemoteMember(
                chat_id=chat, sender_id=actor, membership=happening.emoji, by=RemoteUserID(happening.text) or None,
                change_id=f"{self.network.boot}-{self._changes}",
            ))
            return
        if happening.kind == "topic":
            self._changes += 1
            await self.ctx.emit(RemoteChatInfo(
                chat_id=chat, topic=happening.text, changed_by=actor,
                change_id=f"{self.network.boot}-{self._changes}",
            ))
            return
        if happening.kind == "typing":
            await self.ctx.emit(RemoteTyping(chat_id=chat, sender_id=actor, typing=not happening.removed))
            return
        assert post is not None
        message = MessageID(post.id)
        if happening.kind == "read":
            await self.ctx.emit(RemoteReceipt(chat_id=chat, sender_id=actor, message_id=message))
        elif happening.kind == "post":
            await self.ctx.emit(RemoteMessage(
                chat_id=chat, message_id=message, sender_id=actor, text=happening.text,
                reply_to=MessageID(post.reply_to) if post.reply_to else None,
                sender_avatar_url=self.network.avatars.get(actor),
            ))
        elif happening.kind == "edit":
            await self.ctx.emit(RemoteEdit(
                chat_id=chat, message_id=message, edit_id=happening.emoji, sender_id=actor, text=happening.text,
            ))
        elif happening.kind == "delete":
            await self.ctx.emit(RemoteDelete(chat_id=chat, message_id=message, sender_id=actor))
        else:
            self._changes += 1
            await self.ctx.emit(RemoteReaction(
                chat_id=chat, message_id=message, sender_id=actor, emoji=happening.emoji,
                removed=happening.removed, change_id=f"{self.network.boot}-{self._changes}",
            ))

    # the control API: people on memonet -----------------------------------------------------

    def http_router(self) -> APIRouter:
        router = APIRouter(prefix="/memonet")
        router.add_api_route("/chats/{chat}/messages", self._api_messages, methods=["GET"])
        router.add_api_route("/chats/{chat}/messages", self._api_say, methods=["POST"])
        router.add_api_route("/chats/{chat}/messages/{post_id}/edit", self._api_edit, methods=["POST"])
        router.add_api_route("/chats/{chat}/messages/{post_id}/delete", self._api_delete, methods=["POST"])
        router.add_api_route("/chats/{chat}/messages/{post_id}/reactions", self._api_react, methods=["POST"])
        router.add_api_route("/chats/{chat}/members", self._api_member, methods=["POST"])
        router.add_api_route("/chats/{chat}/topic", self._api_topic, methods=["POST"])
        router.add_api_route("/chats/{chat}/typing", self._api_typing, methods=["POST"])
        router.add_api_route("/chats/{chat}/read", self._api_read, methods=["POST"])
        router.add_api_route("/chats/{chat}/presence", self._api_presence, methods=["GET"])
        router.add_api_route("/fail-sends", self._api_fail, methods=["POST"])
        return router

    def _authorise(self, authorization: str | None) -> None:
        token = self._settings.control_token
        if not token:
            raise HTTPException(404, "the memonet control API is off (no control_token in its settings)")
        if not hmac.compare_digest(authorization or "", f"Bearer {token}"):
            raise HTTPException(401, "wrong or missing control token")

    async def _api_messages(self, chat: str, authorization: str | None = Header(None)) -> list[dict[str, Any]]:
        self._authorise(authorization)
        return [post.view() for post in self.network.chats.get(chat, [])]

    async def _api_say(self, chat: str, body: SayBody, authorization: str | None = Header(None)) -> dict[str, Any]:
        self._authorise(authorization)
        if body.avatar_url is not None:
            self.network.avatars[body.sender] = body.avatar_url
        return self.network.say(chat, body.sender, body.text, reply_to=body.reply_to).view()

    async def _api_edit(
        self, chat: str, post_id: str, body: SayBody, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.edit(chat, post_id, body.sender, body.text)
        return self.network.find(chat, post_id).view()

    async def _api_delete(
        self, chat: str, post_id: str, body: ActorBody, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.delete(chat, post_id, body.sender)
        return self.network.find(chat, post_id).view()

    async def _api_react(
        self, chat: str, post_id: str, body: ReactBody, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.react(chat, post_id, body.sender, body.emoji, removed=body.removed)
        return self.network.find(chat, post_id).view()

    async def _api_member(
        self, chat: str, body: MemberBody, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.membership(chat, body.sender, body.change, by=body.by)
        return await self._api_presence(chat, authorization)

    async def _api_topic(self, chat: str, body: SayBody, authorization: str | None = Header(None)) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.set_topic(chat, body.sender, body.text)
        return await self._api_presence(chat, authorization)

    async def _api_typing(
        self, chat: str, body: TypingBody, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.set_typing(chat, body.sender, body.typing)
        return await self._api_presence(chat, authorization)

    async def _api_read(self, chat: str, body: ReadBody, authorization: str | None = Header(None)) -> dict[str, Any]:
        self._authorise(authorization)
        self.network.mark_read(chat, body.sender, body.message_id)
        return await self._api_presence(chat, authorization)

    async def _api_presence(self, chat: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Who is typing in the chat, and how far each reader has read."""
        self._authorise(authorization)
        return {
            "typing": sorted(self.network.typing.get(chat, set())), "read": self.network.read.get(chat, {}),
            "members": sorted(self.network.members.get(chat, set())), "topic": self.network.topics.get(chat),
        }

    async def _api_fail(self, body: FailBody, authorization: str | None = Header(None)) -> dict[str, int]:
        self._authorise(authorization)
        self.network.failing_sends = body.count
        return {"failing_sends": body.count}


class ActorBody(BaseModel):
    sender: str


class SayBody(ActorBody):
    text: str
    reply_to: str | None = None
    avatar_url: str | None = None
    """Sets the sender's picture (kept for their later messages)."""


class ReactBody(ActorBody):
    emoji: str
    removed: bool = False


class MemberBody(ActorBody):
    change: str
    """join, leave, kick or ban."""
    by: str | None = None


class TypingBody(ActorBody):
    typing: bool = True


class ReadBody(ActorBody):
    message_id: str


class FailBody(BaseModel):
    count: int


__all__ = ["Happening", "MemonetConnector", "MemonetSession", "MemonetSettings", "MemoryNetwork", "Post"]
