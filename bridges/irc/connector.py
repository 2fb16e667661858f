"""The IRC connector: one IRC network per connector section, wired together here.

- The bot connection sits in every bridged channel and is the one listener for IRC -> Matrix
  (``inbound.py`` turns what it hears into remote events); Matrix users' own connections listen
  only for private messages, so closing an idle one never loses what is said in a channel.
- Matrix -> IRC goes through sessions (``session.py``): the bot relays ``<alice> hi`` for users
  without an identity; with ``virtual_users`` each Matrix user who speaks gets a connection of
  their own (nick from ``nick_template``, a stable collision suffix when taken).
- What the bridge knows of the network (channels, the nick <-> user map, the casemapping) is an
  :class:`IrcNetwork` the connector, the sessions and the translation share. Channels and nicks
  are folded by the network's CASEMAPPING (learnt at first connect, then kept), so ``#Python`` and
  ``#python`` are one portal and ``Bob``/``bob`` one ghost.
- Third-party lookups and the ``nick`` command are in ``directory.py``, the HTTP routes (long
  messages, files) in ``http_routes.py``, what is kept across restarts in ``records.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import ChainMap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import irc.client
from fastapi import APIRouter

from bridgekit import (
    BridgeContext,
    ChatID,
    Command,
    MatrixEvent,
    PortalInfo,
    PortalMessages,
    PuppetLogin,
    RoomID,
    SessionKind,
    SessionState,
    UserID,
)
from bridges.irc import directory, identd, inbound, lines, refusals
from bridges.irc.account_login import AccountLogin
from bridges.irc.account_senders import ACCOUNT_TAG
from bridges.irc.channel_keys import ChannelKeys
from bridges.irc.command_tools import NetworkTools
from bridges.irc.downtime import DowntimeWatch
from bridges.irc.grammar import IrcGrammar
from bridges.irc.http_routes import IrcRoutes
from bridges.irc.identify import NickServ
from bridges.irc.link import IrcLink, RegistrationFailed
from bridges.irc.link_approval import OperatorApproval
from bridges.irc.link_protocol import Link
from bridges.irc.matrix_events import MatrixSideEvents
from bridges.irc.moderation import BanRecords
from bridges.irc.netsplits import BATCH_CAP, SplitWatch
from bridges.irc.network import IrcNetwork
from bridges.irc.nicks import collision_nick, template_suffix
from bridges.irc.portal_moderation import PortalModeration
from bridges.irc.power_modes import PowerModes
from bridges.irc.puppets import LOGIN_FLOWS, Puppets
from bridges.irc.reconnects import Backoff, ConnectPacer, Refusal, read_refusal
from bridges.irc.records import IrcRecords
from bridges.irc.replies import ReplyWaiters
from bridges.irc.server_facts import learn_isupport
from bridges.irc.session import IrcSession, SessionSetup
from bridges.irc.settings import IrcSettings
from bridges.irc.user_connections import UserConnections

if TYPE_CHECKING:
    from bridges.irc.keeper.kept_network import KeptNetwork

log = logging.getLogger(__name__)

LISTENER_CAPS = ("server-time", "message-tags", "userhost-in-names", "chghost")
"""Asked for by the bot (the listener): the time a line was said, the network's message IDs, and
everyone's ident and host (in NAMES, and when a host changes), which ban masks need."""

PRIVATE = frozenset({"privmsg", "action", "privnotice"})


class IrcConnector:
    """See the module docstring; configured by :class:`IrcSettings`."""

    Settings = IrcSettings
    portal_messages: PortalMessages = "sessions"
    """Messages go out through the sessions; ``handle_matrix_event`` gets the rest (direct-chat
    invites of ghosts, kicks and bans of them)."""
    protocol_ids = (directory.PROTOCOL,)
    login_flows = LOGIN_FLOWS

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self.settings: IrcSettings = ctx.settings
        self.virtual_users = self.settings.virtual_users
        self.join_on_portal_join = self.settings.join_on_portal_join
        self.network = IrcNetwork(self.name, casemapping=self.settings.casemapping, ghost_for=ctx.ghost_for,
                                  sender_of_ghost=ctx.sender_of_ghost)
        self._records = IrcRecords(ctx.kv, self.name)
        self._routes = IrcRoutes(ctx, self._records)
        self._downtime = DowntimeWatch(ctx, self._records)
        self._splits = SplitWatch(ctx, self.settings.netsplit_minutes * 60)
        self._setup = SessionSetup(self.network, self.settings, self._records, self._routes)
        self._users = UserConnections(ctx, self._setup, self._new_link)
        self._puppets = Puppets(ctx, self._setup, self._new_link)
        self._users.logged_in = self._puppets.by_user  # they count toward max_clients
        self.network.sessions = ChainMap[UserID, IrcSession](self._puppets.by_user, self._users.by_user)  # for mentions
        self._directory = directory.directory_of(ctx)
        self._replies = ReplyWaiters()  # the server's answers to what commands ask (WHOIS, NAMES...)
        self.tools = NetworkTools(ctx, self.network, ChannelKeys(self._records, ctx.credentials, self.network),
                                  self._replies, lambda: self._bot, self.virtual_users)
        self._approval = OperatorApproval(self.network, lambda: self._bot, self._replies,
                                          self.settings.link_approval_minutes)
        self._bot: IrcSession | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._pacer = ConnectPacer(self.settings.connects_per_second, self.settings.connect_burst, time.monotonic())
        self._refusals_told = refusals.NoticeLimit()
        self._events: asyncio.Queue[tuple[Link, irc.client.Event]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._stopping = False
        self._kept: KeptNetwork | None = None
        if self.settings.keeper is not None:  # connections held by a keeper (docs/irc.md); imports redis
            from bridges.irc.keeper.kept_network import KeptNetwork

            self._kept = KeptNetwork(ctx, self.settings, self.settings.keeper, self._records, self.network)
        self._moderation = PortalModeration(ctx, self.network, self._records, self._bridge_sessions)
        self._power = PowerModes(ctx, self.network, lambda: self._bot, self._own_session)
        self._matrix_events = MatrixSideEvents(ctx, self.network, BanRecords(self._records), self._power,
                                               lambda user: self._own_session(user) or self._bot)

    def _bridge_sessions(self) -> list[IrcSession]:
        return [s for s in (self._bot, *self._puppets.by_user.values(), *self._users.by_user.values()) if s is not None]

    def _local_links(self) -> list[IrcLink]:
        """The sockets this process holds (identd; a keeper's connections are the keeper's)."""
        return [s.link for s in self._bridge_sessions() if isinstance(s.link, IrcLink)]

    def _own_session(self, user_id: UserID) -> IrcSession | None:
        """The Matrix user's own connection: logged in (puppet) first, else virtual."""
        return self._puppets.by_user.get(user_id) or self._users.by_user.get(user_id)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        network, settings = self.network, self.settings
        network.casemapping = await self._records.get("casemapping", settings.casemapping)
        network.grammar = IrcGrammar(nicklen=settings.nicklen, casemapping=network.casemapping)
        self._directory.add(self)
        network.portals = set(await self.ctx.portal_chats())
        await self.tools.keys.load()
        await self._routes.start()
        if self._kept is None:  # (a keeper went on reading while the bridge was down: nothing to own up to)
            await self._downtime.start(settings.bot_nick)  # "offline from ... to ...", when it was
        if settings.identd is not None:
            await identd.serve(self.ctx.remote, settings.identd.host, settings.identd.port, self.name,
                               identd.lookup_in(self._local_links))
        try:
            await self._connect_bot()
        except (OSError, RegistrationFailed) as error:
            # An IRC server (or a keeper's Redis) that cannot be reached now must not stop the
            # bridge: Matrix and the other networks go on, and this one is tried again.
            self._reconnect = asyncio.create_task(self._reconnect_bot(failure=error))

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        await self._users.stop()
        await self._puppets.stop()
        if self._bot is not None:
            await self._bot.link.close("bridge shutting down", fail_unsettled=False)
        if self._kept is not None:
            await self._kept.stop()
        self._directory.remove(self)
        await self._downtime.stop()
        self._splits.stop()
        if self.settings.identd is not None:
            await identd.listener_for(self.ctx.remote, self.settings.identd.host, self.settings.identd.port).unregister(
                self.name)

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        """Invites of ghosts, kicks and bans of them, power levels: ``matrix_events.py``."""
        await self._matrix_events.handle(event)

    # ---- the bot connection --------------------------------------------------------------------

    async def _connect_bot(self) -> None:
        settings, ctx, network = self.settings, self.ctx, self.network
        if self._kept is not None:  # paired once, adopting what the keeper holds; Redis down: KeeperUnreachable
            await self._kept.start(self._users)
        link = self._new_link(settings.bot_nick, ident="bridge", realname="Matrix bridge", owner=None,
                              caps=LISTENER_CAPS)
        await ctx.report_session(None, SessionState.CONNECTING)
        await link.connect()
        for cap in (ACCOUNT_TAG, BATCH_CAP):  # each alone: a server without one NAKs only it (puppets, netsplits)
            link.send_now(lines.cap_request([cap]))
        previous, self._bot = self._bot, IrcSession(SessionKind.BOT, link, self._setup)
        # Relayed lines the old connection had queued (pacing) when it dropped: taken at once, so
        # that should this connection drop too before they are adopted, they are in its queue
        # (requeued) for the next one, rather than left behind on the old one.
        carried = previous.link.take_unsent() if previous is not None else []
        network.claim(link.nick, None)
        try:
            await learn_isupport(self.ctx, self._records, network, link)
            for chat in [*network.portals, *(network.fold(c) for c in settings.channels)]:
                self._bot.link.send(network.join_line(chat))
                self._bot.joined.add(chat)
        except BaseException:
            link.requeue(carried)
            raise
        self._bot.adopt(carried)
        if self._kept is not None:
            self._kept.bot_opened(link)
            self._kept.listen(self._handle_event)
        await ctx.report_session(None, SessionState.CONNECTED)

    def _new_link(
        self, nick: str, *, ident: str, realname: str, owner: UserID | None, caps: tuple[str, ...] = (),
        account: AccountLogin | None = None, login_check: bool = False,
    ) -> Link:
        settings, grammar, user_id = self.settings, self.network.grammar, owner or ""

        def next_nick(attempt: int) -> str:
            if owner is None:
                return f"{settings.bot_nick[: grammar.nicklen - 2]}{attempt}"
            return collision_nick(nick, user_id=user_id, attempt=attempt - 1, nicklen=grammar.nicklen,
                                  keep_suffix="" if account else template_suffix(settings.nick_template))

        self.network.bridge_identities.add(ident, None)  # a ban mask must never match one of ours
        if self._kept is not None:
            return self._kept.link(nick, ident=ident, realname=realname, owner=owner, caps=caps, next_nick=next_nick,
                                   account=account, login_check=login_check)
        return IrcLink(
            host=settings.server, port=settings.port, tls=settings.tls, nick=nick, ident=ident, realname=realname,
            password=settings.password, on_event=self._on_event, lines_per_second=settings.lines_per_second,
            burst=settings.burst, next_nick=next_nick, caps=caps, keepalive=settings.keepalive_seconds,
            account=account, nickserv=NickServ(settings.nickserv_nick, settings.nickserv_identify),
            pace=self._wait_to_connect,
        )

    async def _wait_to_connect(self) -> None:
        """Every new connection to the network waits its turn (``reconnects.ConnectPacer``)."""
        await asyncio.sleep(self._pacer.reserve(time.monotonic()))

    async def _reconnect_bot(self, failure: Exception | None = None) -> None:
        """Connect the bot until it works, waiting about 2 s, 4 s, ... up to 2 minutes between
        tries (with jitter; a minute or more when the server throttles us; never again once it
        banned us: see ``reconnects.py``); ``failure``: the first try failed already (at start).
        The wait and its reason are the bot session's state (``status``, ``/health``, ``doctor``)."""
        backoff, where = Backoff(cap=120.0), f"{self.settings.server}:{self.settings.port}"
        while not self._stopping:
            if failure is None:
                await self.ctx.report_session(None, SessionState.TRANSIENT_DISCONNECT, "reconnecting")
            else:
                delay = backoff.next_wait(read_refusal(str(failure)))
                if delay is None:
                    reason = f"{where} banned the bridge ({failure}); not trying again until the bridge restarts"
                    await self.ctx.report_session(None, SessionState.UNKNOWN_ERROR, reason)
                    log.error("%s: %s", self.name, reason)
                    return
                reason = f"cannot reach {where} ({failure}); retrying in {delay:.0f} s"
                await self.ctx.report_session(None, SessionState.TRANSIENT_DISCONNECT, reason)
                log.warning("%s: %s (the bridge runs on without this network meanwhile)", self.name, reason)
                await asyncio.sleep(delay)
            try:
                await self._connect_bot()
                return
            except (OSError, RegistrationFailed) as error:
                failure = error

    # ---- sessions (RemoteSession providers) ----------------------------------------------------

    async def relay_session(self) -> IrcSession | None:
        bot = self._bot
        return bot if bot is not None and bot.link.connected else None

    async def virtual_session(self, user_id: UserID, display_name: str) -> IrcSession:
        return await self._users.open(user_id, display_name)

    async def set_nick(self, user_id: UserID, nick: str) -> str:
        return await self._users.set_nick(user_id, nick)

    async def login(self, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> PuppetLogin:
        return await self._puppets.check(user_id, dict(answers))

    async def connect_puppet(self, user_id: UserID, login: PuppetLogin) -> IrcSession:
        return await self._puppets.connect(user_id, login)

    async def logout(self, user_id: UserID, login: PuppetLogin) -> None:
        self._puppets.forget(user_id, login)

    # ---- portals -------------------------------------------------------------------------------

    async def portal_for_alias(self, alias_suffix: str) -> PortalInfo | None:
        """An alias (``#_irc_libera_#python``) or a ``link`` command names a channel: only a valid
        channel name of this network becomes a portal (it is sent in JOIN, MODE, KICK...)."""
        grammar = self.network.grammar
        channel = grammar.as_channel(alias_suffix)
        if not grammar.is_channel(channel):
            return None
        self.network.channel(channel)
        return PortalInfo(ChatID(self.network.fold(channel)), name=channel, topic=None)

    async def approve_link(self, user_id: UserID, chat_id: ChatID, room_id: RoomID) -> bool | str:
        """A channel operator approves (``link_approval.py``)."""
        return await self._approval.approve(user_id, chat_id, room_id)

    async def portal_linked(self, chat_id: str, room_id: RoomID) -> None:
        if chat_id.startswith("pm:"):
            return
        network, bot = self.network, self._bot
        network.portals.add(chat_id)
        if bot is not None and chat_id not in bot.joined and bot.link.connected:
            network.channel(chat_id)
            bot.link.send(network.join_line(chat_id))
            bot.joined.add(chat_id)

    async def portal_unlinked(self, chat_id: str) -> None:
        self.network.portals.discard(chat_id)
        bot = self._bot
        settings_channels = {self.network.fold(channel) for channel in self.settings.channels}
        if bot is not None and chat_id in bot.joined and chat_id not in settings_channels:
            await bot.leave_chat(chat_id, "unlinked from Matrix")

    # ---- IRC -> Matrix ------------------------------------------------------------------------

    def _on_event(self, link: Link, event: irc.client.Event) -> None:
        # One queue, one worker: events are handled in the order the server sent them (a task
        # per event would let a later line overtake one waiting on the database).
        self._events.put_nowait((link, event))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._pump_events())

    async def _pump_events(self) -> None:
        while not self._events.empty():
            link, event = self._events.get_nowait()
            try:
                await self._handle_event(link, event)
            except Exception:
                log.exception("%s: handling IRC %s failed", self.name, event.type)

    async def _handle_event(self, link: Link, event: irc.client.Event) -> None:
        bot, kind = self._bot, event.type
        self._replies.hear(link, event)
        if kind == "disconnect":
            await self._disconnected(link)
            return
        self.network.learn_identity(event)
        private = kind in PRIVATE and not link.state.is_channel(str(event.target))
        if kind in refusals.REFUSALS:
            await self._refused(link, event)
        elif bot is not None and link is bot.link:
            if not private:  # messages to the bridge bot itself are not bridged
                said = inbound.from_channel(event, self.network, link.state)
                said.remote = await self._splits.sift(event, said.remote)
                await self._apply(said)
        elif private:  # users' own connections only matter for private messages
            session = self._users.of(link) or self._puppets.of(link)
            if session is not None and session.owner is not None:
                await self._apply(inbound.private_message(event, self.network, session.owner))

    async def _apply(self, said: inbound.Inbound) -> None:
        """Do what an event means (``inbound.py`` decided it)."""
        ctx, bot = self.ctx, self._bot
        if said.direct_chat is not None:
            dm = said.direct_chat
            await ctx.open_dm(dm.chat_id, dm.sender, dm.user, sender_name=dm.sender_name)
        if bot is not None:
            for line in said.bot_sends:
                bot.link.send(line)
            bot.joined.update(said.rejoined)
        for event in said.remote:
            await ctx.emit(event)
        for modes in said.modes:  # bans, +i/+k/+s: what the portal follows
            await self._moderation.changed(modes)
        for chat, user in said.own_joins:
            await self._power.joined(chat, user)

    async def _disconnected(self, link: Link) -> None:
        bot = self._bot
        if bot is not None and link is bot.link:
            if not self._stopping:
                self.network.release(link.nick)
                if self._reconnect is None or self._reconnect.done():
                    # A throttle or a ban in the server's last words waits (or stops) at once.
                    words = link.state.failure
                    refused = ConnectionError(words) if read_refusal(words) is not Refusal.NONE else None
                    self._reconnect = asyncio.create_task(self._reconnect_bot(failure=refused))
            return
        session = self._users.of(link)
        if session is not None:
            await self._users.dropped(session)
        puppet = self._puppets.of(link)
        if puppet is not None:
            await self._puppets.dropped(puppet)

    def _session_of(self, link: Link) -> IrcSession | None:
        """The bot's session or the Matrix user's whose connection ``link`` is."""
        bot = self._bot
        return bot if bot is not None and link is bot.link else self._users.of(link) or self._puppets.of(link)

    async def _refused(self, link: Link, event: irc.client.Event) -> None:
        """See ``refusals.py``: the Matrix user whose message it was is told."""
        session = self._session_of(link)
        if session is None:
            return
        refusal = refusals.read_refusal(event, self.network, link.state, owner=session.owner,
                                        sent_to=session.last_sender)
        if refusal is None:
            return
        if refusal.join_failed:
            session.joined.discard(refusal.chat)  # try the JOIN again with the next message
        log.info("%s: %s refused %s: %s (%s)", self.name, link.nick, refusal.where, event.type, refusal.server_said)
        user = session.owner or session.last_sender.get(refusal.chat)
        if user is not None and self._refusals_told.due(user, refusal.chat, time.monotonic()):
            bot_nick = None if session.owner else link.nick
            await self.ctx.tell_user(user, refusals.notice(self.name, refusal, event.type, bot_nick=bot_nick))

    # ---- the directory, commands and routes (``directory.py``, ``http_routes.py``) ------------

    async def thirdparty_protocol(self, protocol: str) -> dict[str, Any] | None:
        return self._directory.protocol()

    async def thirdparty_locations(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._directory.locations(fields)

    async def thirdparty_users(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._directory.users(fields)

    async def thirdparty_location_by_alias(self, alias: str) -> list[dict[str, Any]]:
        return directory.location_by_alias(self.ctx, self.network, alias)

    async def thirdparty_user_by_id(self, user_id: str) -> list[dict[str, Any]]:
        return directory.user_by_id(self.ctx, self.network, user_id)

    def commands(self) -> list[Command]:
        return self._directory.commands(self.name)

    def http_router(self) -> APIRouter:
        return self._routes.router()


__all__ = ["IrcConnector"]
