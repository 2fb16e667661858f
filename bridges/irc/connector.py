"""The IRC connector: one IRC network per connector section.

- The bot connection sits in every bridged channel and is the one listener for IRC -> Matrix:
  what is said there (PRIVMSG, NOTICE, ACTION), joins, parts, quits, kicks, nick changes, topics
  and op/voice modes become remote events for the core. Matrix users' own connections listen
  only for private messages, so closing an idle one never loses what is said in a channel.
- Matrix -> IRC goes through sessions (``session.py``): the bot relays ``<alice> hi`` for users
  without an identity; with ``virtual_users`` each Matrix user who speaks gets a connection of
  their own (nick from ``nick_template``, a stable collision suffix when taken).
- Channels and nicks are folded by the network's CASEMAPPING (learnt at first connect, then kept),
  so ``#Python`` and ``#python`` are one portal and ``Bob``/``bob`` one ghost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import irc.client
from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from bridgekit import (
    BridgeContext,
    ChatID,
    Command,
    CommandContext,
    CommandReply,
    MatrixEvent,
    MediaBusy,
    MediaTooLarge,
    MediaUnavailable,
    MessageID,
    PermissionLevel,
    PortalInfo,
    PortalMessages,
    RemoteChatInfo,
    RemoteMember,
    RemoteMessage,
    RemotePower,
    RemoteUserID,
    RoomID,
    SessionKind,
    SessionState,
    UserID,
)
from bridges.irc import lines
from bridges.irc.casemapping import casefold_irc
from bridges.irc.formatting import strip_formatting
from bridges.irc.grammar import IrcGrammar
from bridges.irc.known_users import BridgeIdentities, KnownUsers
from bridges.irc.link import IrcLink, RegistrationFailed
from bridges.irc.media_links import MediaLinks
from bridges.irc.mentions import irc_message_to_matrix
from bridges.irc.moderation import REASON_BYTES, ModerationRequest, plan_moderation
from bridges.irc.nicks import collision_nick, ident_for, matrix_user_nick, template_suffix
from bridges.irc.output_gate import one_line, sanitize
from bridges.irc.session import IrcSession, Progress, Said
from bridges.irc.settings import IrcSettings

log = logging.getLogger(__name__)

LISTENER_CAPS = ("server-time", "message-tags", "userhost-in-names", "chghost")
"""Asked for by the bot (the listener): the time a line was said, the network's message IDs, and
everyone's ident and host (in NAMES, and when a host changes), which ban masks need."""

POWER_FOR_MODE = {"o": 50, "h": 25, "v": 10}
PREFIX_MODES = {"@": "o", "%": "h", "+": "v"}
RECENT_MESSAGES = 2000
"""Messages remembered for replies and edits (IRC has no IDs to look them up by)."""
REFUSALS = {
    "cannotsendtochan": "the channel does not let it speak (moderated, or banned)",
    "bannedfromchan": "it is banned from the channel",
    "inviteonlychan": "the channel is invite-only",
    "badchannelkey": "the channel needs a key",
    "channelisfull": "the channel is full",
    "needreggednick": "the channel wants a registered nick",
    "nosuchnick": "nobody by that nick is on the network now",
}
"""Numerics by which a server refuses a line or a JOIN, as the ``irc`` package names them."""
REFUSAL_NOTICE_EVERY_S = 60.0
REDELIVERY_ATTEMPTS = 6
"""Tries (2, 4 ... 32 s apart: about a minute) to connect a user's dropped connection again while
lines they sent are still queued; then the Matrix messages waiting on them are given up (the core
tells their senders)."""
PROGRESS_DAYS = 7
"""How long the progress of a message of several lines is kept: it only matters if the bridge
stops before the event is recorded handled, and the replay comes at the next start."""


@dataclass
class Channel:
    """A channel as the bot sees it: its name as written, and who is in it."""

    name: str
    members: dict[str, str] = field(default_factory=dict)
    """folded nick -> nick as written"""


class IrcConnector:
    """See the module docstring; configured by :class:`IrcSettings`."""

    Settings = IrcSettings
    portal_messages: PortalMessages = "sessions"
    """Messages go out through the sessions; ``handle_matrix_event`` gets the rest (direct-chat
    invites of ghosts, kicks and bans of them)."""
    _instances: ClassVar[dict[str, IrcConnector]] = {}
    _nick_command_owner: ClassVar[str | None] = None

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self.settings: IrcSettings = ctx.settings
        self.virtual_users = self.settings.virtual_users
        self._bot: IrcSession | None = None
        self._casemapping = "rfc1459"
        self._grammar = IrcGrammar()
        """Names the network accepts: every nick or channel that comes from Matrix is checked."""
        self._known = KnownUsers(self.fold)
        self._bridge_identities = BridgeIdentities()
        self._media_links: MediaLinks | None = None
        self._channels: dict[str, Channel] = {}
        self._portals: set[str] = set()
        self._own: dict[str, UserID | None] = {}
        """folded nick -> the Matrix user whose connection it is (None: the bot)."""
        self._sessions_by_user: dict[UserID, IrcSession] = {}
        self._recent: OrderedDict[str, Said] = OrderedDict()
        self._ids = itertools.count(1)
        self._reconnect: asyncio.Task[None] | None = None
        self._redeliveries: set[asyncio.Task[None]] = set()
        self._refusals_told: dict[tuple[UserID, str], float] = {}
        self._events: asyncio.Queue[tuple[IrcLink, irc.client.Event]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._stopping = False

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        ctx, settings = self.ctx, self.settings
        self._casemapping = await self._kv_get("casemapping", settings.casemapping)
        self._grammar = IrcGrammar(nicklen=settings.nicklen, casemapping=self._casemapping)
        IrcConnector._instances[self.name] = self
        self._portals = set(await ctx.portal_chats())
        self._media_links = MediaLinks(await ctx.signing_key("media-links"), self.name,
                                       lifetime_seconds=settings.media_link_days * 86_400)
        try:
            await self._connect_bot()
        except (OSError, RegistrationFailed) as error:
            # An IRC server that cannot be reached now (DNS, refused, down) must not stop the
            # bridge: Matrix and the other networks go on, and this one is tried again.
            self._reconnect = asyncio.create_task(self._reconnect_bot(failure=error))

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        for task in list(self._redeliveries):
            task.cancel()
        # Lines still unsettled after the grace keep their Matrix events unhandled: replayed at
        # the next start (the progress of long messages makes that send only the rest).
        for session in list(self._sessions_by_user.values()):
            await session.link.close("bridge shutting down", fail_unsettled=False)
        if self._bot is not None:
            await self._bot.link.close("bridge shutting down", fail_unsettled=False)
        IrcConnector._instances.pop(self.name, None)

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        """Invites of this network's ghosts to a direct chat start a private conversation; kicks
        and bans of ghosts in a portal become KICK and ban on IRC."""
        ctx = self.ctx
        if event.type != "m.room.member" or event.state_key is None:
            return
        folded = ctx.sender_of_ghost(event.state_key)
        if folded is None:
            return
        membership = event.content.get("membership")
        if membership in ("leave", "ban") and event.sender != event.state_key:
            await self._moderate(event, folded, ban=membership == "ban")
            return
        if membership != "invite" or event.content.get("is_direct") is not True:
            return
        user = UserID(event.sender)
        problem = self._grammar.nick_problem(self._nick_as_written(folded))
        if problem is not None:
            # The ghost's ID was made up: a private chat with it would message whatever it names.
            await ctx.tell_user(user, f"{event.state_key} is no one on {self.name}: {problem}.")
            return
        ghost = ctx.matrix.intent(UserID(event.state_key))
        await ghost.ensure_registered()
        await ghost.join(RoomID(event.room_id))
        await ctx.link_portal(ChatID(self._pm_chat(user, folded)), RoomID(event.room_id), relay=False)

    async def _moderate(self, event: MatrixEvent, folded: str, *, ban: bool) -> None:
        """A Matrix moderator kicked or banned an IRC user's ghost: do the same on IRC, as the
        moderator's own connection when they have one (the network then shows who did it),
        else as the bridge bot. What is sent, or refused, is decided in ``moderation.py``; when
        the bridge did less than asked, the moderator is told in the room."""
        ctx = self.ctx
        chat = await ctx.chat_for_room(RoomID(event.room_id))
        if chat is None or chat.startswith("pm:"):
            return
        previous = event.unsigned.get("prev_content")
        if not ban and isinstance(previous, dict) and previous.get("membership") == "ban":
            return  # an unban on Matrix: nobody is to be kicked on IRC
        session = self._sessions_by_user.get(UserID(event.sender)) or self._bot
        if session is None:
            return
        reason = event.content.get("reason")
        text = one_line(reason if isinstance(reason, str) and reason else f"by {event.sender} on Matrix", REASON_BYTES)
        plan = plan_moderation(
            ModerationRequest(self.name, self.channel_name(chat), folded, ban, text),
            grammar=self._grammar, known=self._known, own_nicks=self._own, bridge=self._bridge_identities,
        )
        for line in plan.lines:
            session.link.send(line)
        if plan.notice is not None:
            ctx.log.info("%s: %s of %s: %s", self.name, "ban" if ban else "kick", event.state_key, plan.notice)
            await ctx.matrix.intent(ctx.bot_user_id).send_text(
                RoomID(event.room_id), f"{event.sender}: {plan.notice}", msgtype="m.notice",
                mentions=[UserID(event.sender)], txn_id=f"irc-moderation:{event.event_id}",
            )

    # ---- the bot connection --------------------------------------------------------------------

    async def _connect_bot(self) -> None:
        settings, ctx = self.settings, self.ctx
        link = self._new_link(settings.bot_nick, ident="bridge", realname="Matrix bridge", owner=None,
                              caps=LISTENER_CAPS)
        await ctx.report_session(None, SessionState.CONNECTING)
        await link.connect()
        previous, self._bot = self._bot, IrcSession(SessionKind.BOT, link, self)
        # Relayed lines the old connection had queued (pacing) when it dropped: taken at once, so
        # that should this connection drop too before they are adopted, they are in its queue
        # (requeued) for the next one, rather than left behind on the old one.
        carried = previous.link.take_unsent() if previous is not None else []
        self._own[self.fold(link.nick)] = None
        try:
            await self._learn_isupport(link)
            for chat in [*self._portals, *(self.fold(c) for c in settings.channels)]:
                self._bot.link.send(lines.join(self.channel_name(chat)))
                self._bot.joined.add(chat)
        except BaseException:
            link.requeue(carried)
            raise
        self._bot.adopt(carried)
        await ctx.report_session(None, SessionState.CONNECTED)

    def _new_link(
        self, nick: str, *, ident: str, realname: str, owner: UserID | None, caps: tuple[str, ...] = ()
    ) -> IrcLink:
        settings = self.settings
        user_id = owner or ""

        def next_nick(attempt: int) -> str:
            if owner is None:
                return f"{settings.bot_nick[: self._nicklen - 2]}{attempt}"
            return collision_nick(nick, user_id=user_id, attempt=attempt - 1, nicklen=self._nicklen,
                                  keep_suffix=template_suffix(settings.nick_template))

        self._bridge_identities.add(ident, None)  # a ban mask must never match one of ours
        return IrcLink(
            host=settings.server, port=settings.port, tls=settings.tls, nick=nick, ident=ident, realname=realname,
            password=settings.password, on_event=self._on_event, lines_per_second=settings.lines_per_second,
            burst=settings.burst, next_nick=next_nick, caps=caps, keepalive=settings.keepalive_seconds,
        )

    async def _learn_isupport(self, link: IrcLink) -> None:
        mapping = link.isupport.get("CASEMAPPING", "").lower()
        if mapping and mapping != self._casemapping:
            await self._record_casemapping(mapping)
        self._grammar = self._grammar.with_isupport(link.isupport, casemapping=self._casemapping)

    async def _record_casemapping(self, mapping: str) -> None:
        ctx = self.ctx
        recorded = await self._kv_get("casemapping", None)
        if recorded is None:
            await self._kv_set("casemapping", mapping)
            self._casemapping = mapping
            ctx.log.info("%s uses CASEMAPPING %s (recorded)", self.name, mapping)
        elif recorded != mapping:
            # Changing it would move every ghost and portal to new IDs: never silently.
            ctx.log.warning(
                "%s now says CASEMAPPING %s but %s was recorded at first connect; keeping %s (ghost and "
                "portal IDs depend on it)", self.name, mapping, recorded, recorded,
            )

    async def _reconnect_bot(self, failure: Exception | None = None) -> None:
        """Connect the bot until it works, waiting 2 s, 4 s, ... up to 2 minutes between tries;
        ``failure``: the first try failed already (at start). The wait and its reason are the bot
        session's state, which ``status``, ``/health`` and ``doctor`` show."""
        delay = 2.0
        where = f"{self.settings.server}:{self.settings.port}"
        while not self._stopping:
            if failure is None:
                await self.ctx.report_session(None, SessionState.TRANSIENT_DISCONNECT, "reconnecting")
            else:
                reason = f"cannot reach {where} ({failure}); retrying in {delay:.0f} s"
                await self.ctx.report_session(None, SessionState.TRANSIENT_DISCONNECT, reason)
                log.warning("%s: %s (the bridge runs on without this network meanwhile)", self.name, reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 120)
            try:
                await self._connect_bot()
                return
            except (OSError, RegistrationFailed) as error:
                failure = error

    # ---- helpers the sessions use (SessionHost) ------------------------------------------------

    @property
    def _nicklen(self) -> int:
        return self._grammar.nicklen

    @property
    def max_lines(self) -> int:
        return self.settings.max_lines

    @property
    def edits(self) -> str:
        return self.settings.edits

    @property
    def reply_template(self) -> str:
        return self.settings.reply_template

    def fold(self, text: str) -> str:
        return casefold_irc(text, self._casemapping)

    def channel_name(self, chat_id: str) -> str:
        channel = self._channels.get(chat_id)
        return channel.name if channel is not None else chat_id

    def target_of(self, chat_id: str) -> str:
        if chat_id.startswith("pm:"):
            return self._channels_pm_nick(chat_id)
        return self.channel_name(chat_id)

    def pill_to_nick(self, user_id: str) -> str | None:
        ctx = self.ctx
        folded = ctx.sender_of_ghost(user_id)
        if folded is not None:
            nick = self._nick_as_written(folded)
            return nick if self._grammar.is_nick(nick) else None
        session = self._sessions_by_user.get(UserID(user_id))
        return session.nick if session is not None else None

    def recall(self, message_id: str) -> Said | None:
        return self._recent.get(message_id)

    def remember(self, message_id: str, said: Said) -> None:
        self._recent[message_id] = said
        while len(self._recent) > RECENT_MESSAGES:
            self._recent.popitem(last=False)

    async def publish_text(self, text: str) -> str | None:
        ctx = self.ctx
        if not ctx.public_url:
            return None
        text_id = secrets.token_urlsafe(12)
        ttl = self.settings.long_text_days * 86_400
        await self._kv_set(f"text:{text_id}", {"text": text, "at": int(time.time())}, ttl_seconds=ttl)
        return f"{ctx.public_url.rstrip('/')}/irc/{self.name}/text/{text_id}"

    async def progress(self, key: str) -> Progress | None:
        stored = await self._kv_get(f"progress:{key}", None)
        if not isinstance(stored, dict):
            return None
        lines, done = stored.get("lines"), stored.get("done")
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines) or not isinstance(done, int):
            return None
        return Progress(lines, done)

    async def record_progress(self, key: str, progress: Progress) -> None:
        try:
            await self._kv_set(f"progress:{key}", {"lines": progress.lines, "done": progress.done},
                               ttl_seconds=PROGRESS_DAYS * 86_400)
        except Exception:
            # Only a crash before the event is recorded handled needs it (then some lines come twice).
            log.exception("%s: recording how far a message got failed", self.name)

    def media_link(self, mxc: str, filename: str) -> str | None:
        """A signed link to a file a Matrix message carries into a portal: minted only here, as
        the message is bridged (see ``media_links.py``)."""
        ctx = self.ctx
        signed = self._media_links.mint(mxc) if self._media_links is not None and ctx.public_url else None
        if signed is None or not ctx.public_url:
            return None
        return f"{ctx.public_url.rstrip('/')}/irc/{self.name}/media/{signed}/{_safe_filename(filename)}"

    # ---- sessions (RemoteSession providers) ----------------------------------------------------

    async def relay_session(self) -> IrcSession | None:
        bot = self._bot
        return bot if bot is not None and bot.link.connected else None

    async def virtual_session(self, user_id: UserID, display_name: str) -> IrcSession:
        settings = self.settings
        wanted = await self._kv_get(f"nick:{user_id}", None)
        # Checked again: the network's NICKLEN or grammar may be stricter than when it was chosen.
        nick = wanted if isinstance(wanted, str) and self._grammar.is_nick(wanted) else matrix_user_nick(
            settings.nick_template, displayname=display_name, user_id=user_id, nicklen=self._nicklen,
        )
        realname = settings.realname_template.format(user_id=user_id)
        link = self._new_link(nick, ident=ident_for(user_id), realname=realname, owner=user_id)
        await link.connect()
        session = IrcSession(SessionKind.VIRTUAL, link, self, owner=user_id, on_close=self._session_closed)
        self._sessions_by_user[user_id] = session
        self._own[self.fold(link.nick)] = user_id
        if link.nick != nick:
            await self.ctx.tell_user(user_id, (
                f"On {self.name}, the nick {nick} is taken, so you are {link.nick}. Choose another with "
                f"'nick {self.name} <nick>' in this room."
            ))
        return session

    async def reconnected(self, session: IrcSession) -> None:
        if session.owner is not None:
            self._sessions_by_user[session.owner] = session
            self._own[self.fold(session.nick)] = session.owner
            await self.ctx.report_session(session.owner, SessionState.CONNECTED)

    async def _session_closed(self, session: IrcSession) -> None:
        if session.owner is not None and self._sessions_by_user.get(session.owner) is session:
            del self._sessions_by_user[session.owner]
        self._own.pop(self.fold(session.nick), None)

    # ---- portals -------------------------------------------------------------------------------

    async def portal_for_alias(self, alias_suffix: str) -> PortalInfo | None:
        """An alias (``#_irc_libera_#python``) or a ``link`` command names a channel: only a valid
        channel name of this network becomes a portal (it is sent in JOIN, MODE, KICK...)."""
        channel = self._grammar.as_channel(alias_suffix)
        if not self._grammar.is_channel(channel):
            return None
        chat = self.fold(channel)
        self._channels.setdefault(chat, Channel(channel))
        return PortalInfo(ChatID(chat), name=channel, topic=None)

    async def portal_linked(self, chat_id: str, room_id: RoomID) -> None:
        if chat_id.startswith("pm:"):
            return
        self._portals.add(chat_id)
        bot = self._bot
        if bot is not None and chat_id not in bot.joined and bot.link.connected:
            self._channels.setdefault(chat_id, Channel(chat_id))
            bot.link.send(lines.join(self.channel_name(chat_id)))
            bot.joined.add(chat_id)

    async def portal_unlinked(self, chat_id: str) -> None:
        self._portals.discard(chat_id)
        bot = self._bot
        if bot is not None and chat_id in bot.joined and chat_id not in self._settings_channels():
            await bot.leave_chat(chat_id, "unlinked from Matrix")

    def _settings_channels(self) -> set[str]:
        return {self.fold(channel) for channel in self.settings.channels}

    # ---- IRC -> Matrix ------------------------------------------------------------------------

    def _on_event(self, link: IrcLink, event: irc.client.Event) -> None:
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

    async def _handle_event(self, link: IrcLink, event: irc.client.Event) -> None:
        bot = self._bot
        kind = event.type
        if kind == "disconnect":
            await self._disconnected(link)
            return
        self._learn_identity(event)
        is_bot = bot is not None and link is bot.link
        if kind in REFUSALS:
            await self._refused(link, event)
            return
        if kind in ("privmsg", "action", "privnotice") and not _is_channel(str(event.target)):
            await self._private(link, event, is_bot)
            return
        if not is_bot:
            return  # users' own connections only matter for private messages
        handler = _CHANNEL_HANDLERS.get(kind)
        if handler is not None:
            await handler(self, event)

    async def _disconnected(self, link: IrcLink) -> None:
        bot = self._bot
        if bot is not None and link is bot.link and not self._stopping:
            self._own.pop(self.fold(link.nick), None)
            if self._reconnect is None or self._reconnect.done():
                self._reconnect = asyncio.create_task(self._reconnect_bot())
            return
        session = self._session_of(link)
        if session is None or session.owner is None or self._stopping or session.closed:
            return
        await self.ctx.report_session(session.owner, SessionState.TRANSIENT_DISCONNECT, "the IRC server hung up")
        if link.has_unsent:
            # Lines the user sent are still queued (pacing) or unechoed: connect again now to send
            # them, rather than when they next speak.
            task = asyncio.create_task(self._redeliver(session.owner, session))
            self._redeliveries.add(task)
            task.add_done_callback(self._redeliveries.discard)
        else:
            await self._session_closed(session)

    def _learn_identity(self, event: irc.client.Event) -> None:
        """Idents and hosts, from whatever shows them: every line's ``nick!ident@host`` prefix,
        WHO replies (352), CHGHOST, and the host the server says a connection of ours has (396)."""
        source, arguments = event.source, [str(a) for a in event.arguments]
        nick, ident, host = (getattr(source, part, None) for part in ("nick", "user", "host"))
        if event.type == "chghost" and nick and arguments:
            self._saw(str(nick), str(event.target), arguments[0])
        elif nick and ident and host:
            self._saw(str(nick), str(ident), str(host))
        if event.type == "whoreply" and len(arguments) >= 5:  # [channel, ident, host, server, nick, ...]
            self._saw(arguments[4], arguments[1], arguments[2])
        elif event.type == "396" and arguments:  # RPL_VISIBLEHOST: [host or ident@host, text]
            self._bridge_identities.add(None, arguments[0].rpartition("@")[2])

    def _saw(self, nick: str, ident: str | None, host: str | None) -> None:
        if not nick:
            return
        self._known.saw(nick, ident, host)
        if self.fold(nick) in self._own:
            self._bridge_identities.add(ident, host)

    def _session_of(self, link: IrcLink) -> IrcSession | None:
        """The bot's session or the Matrix user's whose connection ``link`` is."""
        bot = self._bot
        if bot is not None and link is bot.link:
            return bot
        return next((s for s in self._sessions_by_user.values() if s.link is link), None)

    async def _refused(self, link: IrcLink, event: irc.client.Event) -> None:
        """The server refused to let a connection speak in or join a channel (+m, a ban, +i...),
        or the nick a private message went to is gone.

        The lines were accepted from Matrix and written, so nothing fails on the Matrix side: the
        Matrix user whose message it was is told privately, at most once a minute per channel.
        """
        session = self._session_of(link)
        target = str(event.arguments[0]) if event.arguments else ""
        if session is None or not target:
            return
        if event.type == "nosuchnick":
            # A private message to someone who left; only for a chat we sent to (the bridge asks
            # nothing else of nicks that could answer this).
            chat = self._pm_chat(session.owner, self.fold(target)) if session.owner else ""
            if chat not in session.last_sender:
                return
            where = f"to {target}"
        elif _is_channel(target):
            chat = self.fold(target)
            where = f"in {target}"
            if event.type != "cannotsendtochan":
                session.joined.discard(chat)  # the JOIN failed: try it again with the next message
        else:
            return
        user = session.owner or session.last_sender.get(chat)
        server_text = str(event.arguments[-1]) if len(event.arguments) > 1 else ""
        said = " ".join(strip_formatting(sanitize(server_text)).split())
        log.info("%s: %s refused %s: %s (%s)", self.name, link.nick, where, event.type, said)
        now = time.monotonic()
        if user is None or self._refusals_told.get((user, chat), -math.inf) > now - REFUSAL_NOTICE_EVERY_S:
            return
        self._refusals_told[(user, chat)] = now
        who = "your IRC connection" if session.owner else f"the bridge's bot ({link.nick}), which relays for you,"
        await self.ctx.tell_user(user, (
            f"{self.name}: {who} could not deliver your message {where}: {REFUSALS[event.type]}"
            + (f' (the server says "{said[:200]}")' if said else "") + "."
        ))

    async def _redeliver(self, user: UserID, session: IrcSession) -> None:
        delay = 2.0
        for attempt in range(REDELIVERY_ATTEMPTS):
            if self._stopping or session.closed or session.link.connected:
                return
            try:
                await session.reconnect()
                return
            except (OSError, RegistrationFailed) as error:
                log.info("%s: reconnecting %s to send queued lines failed (%s)", self.name, user, error)
                if attempt + 1 < REDELIVERY_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay *= 2
        unsent = session.link.take_unsent()
        await self._session_closed(session)
        for line in unsent:
            # The delivery of a Matrix message waits on these: it fails, and the core tells its sender.
            line.fail(ConnectionError(f"could not connect to {self.name} again"))
        lost = [line for line in unsent if line.settled is None]
        if lost:
            await self.ctx.tell_user(user, (
                f"The connection to {self.name} dropped and could not be made again, so your last "
                f"{len(lost)} line(s) were not delivered to IRC."
            ))

    async def _channel_message(self, event: irc.client.Event) -> None:
        source = _nick(event)
        chat = self.fold(str(event.target))
        if self.fold(source) in self._own or chat not in self._portals:
            return  # our own sessions' lines (the network does not echo them, the bot hears them)
        text = str(event.arguments[0]) if event.arguments else ""
        msgtype = {"pubmsg": "m.text", "pubnotice": "m.notice", "action": "m.emote"}[event.type]
        await self._emit_message(chat, source, text, msgtype, event)

    async def _emit_message(self, chat: str, source: str, text: str, msgtype: str, event: irc.client.Event) -> None:
        ctx = self.ctx
        body, html, mentioned = irc_message_to_matrix(text, self._user_for_nick, casefold=self.fold)
        message_id = _tag(event, "msgid") or f"irc-{time.time_ns()}-{next(self._ids)}"
        self.remember(message_id, Said(source, text))
        await ctx.emit(RemoteMessage(
            chat_id=ChatID(chat), message_id=MessageID(message_id), sender_id=RemoteUserID(self.fold(source)),
            sender_name=source, text=body,
            html=html, msgtype=msgtype, mentions=tuple(mentioned), timestamp_ms=_server_time(event),
        ))

    def _user_for_nick(self, nick: str) -> str | None:
        folded = self.fold(nick)
        if folded in self._own:
            return self._own[folded]
        for channel in self._channels.values():
            if folded in channel.members:
                return self.ctx.ghost_for(RemoteUserID(folded))
        return None

    async def _private(self, link: IrcLink, event: irc.client.Event, is_bot: bool) -> None:
        source = _nick(event)
        if is_bot or self.fold(source) in self._own:
            return  # messages to the bridge bot itself are not bridged
        session = self._session_of(link)
        user = session.owner if session is not None else None
        if user is None:
            return
        folded = self.fold(source)
        chat = self._pm_chat(user, folded)
        await self.ctx.open_dm(ChatID(chat), RemoteUserID(folded), user, sender_name=source)
        text = str(event.arguments[0]) if event.arguments else ""
        msgtype = {"privmsg": "m.text", "privnotice": "m.notice", "action": "m.emote"}[event.type]
        await self._emit_message(chat, source, text, msgtype, event)

    def _pm_chat(self, user: UserID, folded_nick: str) -> str:
        return f"pm:{folded_nick}:{user}"

    def _channels_pm_nick(self, chat_id: str) -> str:
        nick = self._nick_as_written(chat_id.split(":", 2)[1])
        problem = self._grammar.nick_problem(nick)
        if problem is not None:  # a private chat made before nicks were checked: send nothing
            raise ValueError(f"{nick!r} is not a nick on {self.name} ({problem}): nothing was sent")
        return nick

    def _nick_as_written(self, folded: str) -> str:
        for channel in self._channels.values():
            if folded in channel.members:
                return channel.members[folded]
        seen = self._known.get(folded)
        return seen.nick if seen is not None else folded

    async def _join(self, event: irc.client.Event) -> None:
        source = _nick(event)
        chat = self.fold(str(event.target))
        channel = self._channels.setdefault(chat, Channel(str(event.target)))
        if self.fold(source) == self.fold(self._bot_nick()):
            channel.name = str(event.target)
            bot = self._bot
            if bot is not None:
                bot.link.send(lines.who(channel.name))  # everyone's ident and host, for ban masks
            return
        channel.members[self.fold(source)] = source
        await self._member(chat, source, "join")

    async def _part(self, event: irc.client.Event) -> None:
        source = _nick(event)
        chat = self.fold(str(event.target))
        channel = self._channels.get(chat)
        if channel is not None:
            channel.members.pop(self.fold(source), None)
        await self._member(chat, source, "leave", reason=_argument(event))

    async def _quit(self, event: irc.client.Event) -> None:
        source = _nick(event)
        folded = self.fold(source)
        for chat, channel in self._channels.items():
            if channel.members.pop(folded, None) is not None:
                await self._member(chat, source, "leave", reason=_argument(event))

    async def _kick(self, event: irc.client.Event) -> None:
        kicker = _nick(event)
        chat = self.fold(str(event.target))
        kicked = str(event.arguments[0]) if event.arguments else ""
        channel = self._channels.get(chat)
        if channel is not None:
            channel.members.pop(self.fold(kicked), None)
        if self.fold(kicked) == self.fold(self._bot_nick()):
            bot = self._bot
            if bot is not None:
                bot.joined.discard(chat)
                bot.link.send(lines.join(self.channel_name(chat)))  # the bridge must keep listening
                bot.joined.add(chat)
            return
        reason = str(event.arguments[1]) if len(event.arguments) > 1 else None
        await self._member(chat, kicked, "kick", by=kicker, reason=reason)

    async def _nick_change(self, event: irc.client.Event) -> None:
        old, new = _nick(event), str(event.target)
        old_folded, new_folded = self.fold(old), self.fold(new)
        self._known.renamed(old, new)
        if old_folded in self._own:
            self._own[new_folded] = self._own.pop(old_folded)
            return
        for chat, channel in self._channels.items():
            if channel.members.pop(old_folded, None) is not None:
                channel.members[new_folded] = new
                await self._member(chat, old, "leave", reason=f"is now known as {new}")
                await self._member(chat, new, "join")

    async def _names(self, event: irc.client.Event) -> None:
        # 353: [channel type, channel, "nick1 @nick2 +nick3"] (target is our nick)
        if len(event.arguments) < 3:
            return
        channel_name, names = str(event.arguments[1]), str(event.arguments[2])
        chat = self.fold(channel_name)
        channel = self._channels.setdefault(chat, Channel(channel_name))
        for entry in names.split():
            prefixes = ""
            while entry and entry[0] in PREFIX_MODES:
                prefixes, entry = prefixes + entry[0], entry[1:]
            nick, _, userhost = entry.partition("!")  # userhost-in-names: nick!ident@host
            ident, _, host = userhost.partition("@")
            self._saw(nick, ident, host)
            folded = self.fold(nick)
            if not nick or folded in self._own:
                continue
            channel.members[folded] = nick
            await self._member(chat, nick, "join")
            level = max((POWER_FOR_MODE[PREFIX_MODES[p]] for p in prefixes), default=0)
            if level and chat in self._portals:
                await self.ctx.emit(RemotePower(ChatID(chat), RemoteUserID(folded), level, change_id=self._change_id()))

    async def _topic(self, event: irc.client.Event) -> None:
        ctx = self.ctx
        if event.type == "currenttopic":  # 332: [channel, topic]
            if len(event.arguments) < 2:
                return
            chat, topic, setter = self.fold(str(event.arguments[0])), str(event.arguments[1]), None
        else:
            chat, topic, setter = self.fold(str(event.target)), _argument(event) or "", _nick(event)
            if self.fold(setter) in self._own:
                return
        if chat not in self._portals:
            return
        await ctx.emit(RemoteChatInfo(ChatID(chat), topic=topic,
                                      changed_by=RemoteUserID(self.fold(setter)) if setter else None,
                                      change_id=self._change_id()))

    async def _mode(self, event: irc.client.Event) -> None:
        chat = self.fold(str(event.target))
        if not _is_channel(str(event.target)) or chat not in self._portals or not event.arguments:
            return
        modes, params = str(event.arguments[0]), [str(a) for a in event.arguments[1:]]
        adding = True
        for mode in modes:
            if mode in "+-":
                adding = mode == "+"
                continue
            if mode in POWER_FOR_MODE and params:
                nick = params.pop(0)
                folded = self.fold(nick)
                if self._own.get(folded, "bot") is None:
                    continue  # the bridge bot's own modes
                level = POWER_FOR_MODE[mode] if adding else 0
                # A Matrix user's own connection made operator: the Matrix user gets the power.
                owner = self._own.get(folded)
                await self.ctx.emit(RemotePower(ChatID(chat), RemoteUserID(folded), level,
                                                change_id=self._change_id(), matrix_user=owner))
            elif mode in "beIkl" and params and (adding or mode != "l"):
                params.pop(0)  # modes with a parameter that do not concern power

    async def _member(
        self, chat: str, nick: str, membership: str, *, by: str | None = None, reason: str | None = None
    ) -> None:
        if chat not in self._portals or self.fold(nick) in self._own:
            return
        await self.ctx.emit(RemoteMember(
            ChatID(chat), RemoteUserID(self.fold(nick)), membership, by=RemoteUserID(self.fold(by)) if by else None,
            reason=reason, sender_name=nick,
            change_id=self._change_id(),
        ))

    def _change_id(self) -> str:
        return f"{time.time_ns()}-{next(self._ids)}"

    def _bot_nick(self) -> str:
        return self._bot.nick if self._bot is not None else self.settings.bot_nick

    # ---- third-party lookups (the directory of networks, channels and users) -----------------

    protocol_ids = ("irc",)

    def _networks(self) -> list[IrcConnector]:
        # Every IRC network of the bridge answers under the one "irc" protocol.
        return [network for _name, network in sorted(IrcConnector._instances.items())]

    async def thirdparty_protocol(self, protocol: str) -> dict[str, Any] | None:
        return {
            "user_fields": ["network", "nickname"],
            "location_fields": ["network", "channel"],
            "icon": "mxc://matrix.org/irc",
            "field_types": {
                "network": {"regexp": "[a-z0-9-]+", "placeholder": "libera"},
                "channel": {"regexp": "[#&][^\\s,:]+", "placeholder": "#channel"},
                "nickname": {"regexp": "[^\\s#&,:][^\\s,:]*", "placeholder": "nick"},
            },
            "instances": [
                {"network_id": n.name, "desc": f"{n.name} ({n.settings.server})", "fields": {"network": n.name}}
                for n in self._networks()
            ],
        }

    async def thirdparty_locations(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        network = IrcConnector._instances.get(fields.get("network", ""))
        channel = fields.get("channel", "")
        if network is None or not network._grammar.is_channel(channel):
            return []
        ctx = network.ctx
        alias = f"#{ctx.alias_prefix}{network.fold(channel)}:{ctx.server_name}"
        return [{"alias": alias, "protocol": protocol, "fields": {"network": network.name, "channel": channel}}]

    async def thirdparty_users(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        network = IrcConnector._instances.get(fields.get("network", ""))
        nick = fields.get("nickname", "")
        if network is None or not network._grammar.is_nick(nick):
            return []
        user_id = network.ctx.ghost_for(RemoteUserID(network.fold(nick)))
        return [{"userid": user_id, "protocol": protocol, "fields": {"network": network.name, "nickname": nick}}]

    async def thirdparty_location_by_alias(self, alias: str) -> list[dict[str, Any]]:
        ctx = self.ctx
        localpart = alias[1:].split(":", 1)[0]
        if not localpart.startswith(ctx.alias_prefix):
            return []
        channel = self._grammar.as_channel(localpart[len(ctx.alias_prefix):])
        if not self._grammar.is_channel(channel):
            return []
        return [{"alias": alias, "protocol": "irc", "fields": {"network": self.name, "channel": channel}}]

    async def thirdparty_user_by_id(self, user_id: str) -> list[dict[str, Any]]:
        folded = self.ctx.sender_of_ghost(user_id)
        if folded is None:
            return []
        nick = self._nick_as_written(folded)
        return [{"userid": user_id, "protocol": "irc", "fields": {"network": self.name, "nickname": nick}}]

    # ---- commands and routes ------------------------------------------------------------------

    def commands(self) -> list[Command]:
        # One `nick` command serves every IRC network of the bridge: the first network registers it.
        if IrcConnector._nick_command_owner not in (None, self.name):
            return []
        IrcConnector._nick_command_owner = self.name
        return [Command("nick", "Choose your nick on an IRC network", _nick_command, usage="<network> <nick>",
                        level=PermissionLevel.USER)]

    def http_router(self) -> APIRouter:
        router = APIRouter(prefix=f"/irc/{self.name}")
        router.add_api_route("/text/{text_id}", self._serve_text, methods=["GET"])
        router.add_api_route("/media/{server}/{media_id}/{token}/{filename}", self._serve_media, methods=["GET"])
        return router

    async def _serve_text(self, text_id: str) -> PlainTextResponse:
        stored = await self._kv_get(f"text:{text_id}", None)
        if not isinstance(stored, dict) or not isinstance(stored.get("text"), str):
            raise HTTPException(404, "no such message")
        return PlainTextResponse(stored["text"])

    async def _serve_media(self, server: str, media_id: str, token: str, filename: str) -> Response:
        """A file behind a link :meth:`media_link` minted, streamed (at most ``media_max_mib``).
        An unsigned, altered or expired link is no link: 404, nothing fetched."""
        ctx, links = self.ctx, self._media_links
        if links is None or not links.check(server, media_id, token):
            raise HTTPException(404, "no such file")
        cap = int(self.settings.media_max_mib * 1024 * 1024)
        opened = contextlib.AsyncExitStack()
        try:
            download = await opened.enter_async_context(ctx.open_media(f"mxc://{server}/{media_id}", max_bytes=cap))
        except MediaBusy as error:
            raise HTTPException(503, "too many downloads at once; try again shortly",
                                headers={"Retry-After": "5"}) from error
        except MediaTooLarge as error:
            raise HTTPException(502, f"the file is larger than this bridge serves ({cap // 1048576} MiB)") from error
        except MediaUnavailable as error:
            log.info("%s: serving a media link failed: %s", self.name, error)
            raise HTTPException(404, "no such file") from error

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in download.chunks:
                    yield chunk  # past the cap this raises: the answer breaks off, short
            finally:
                await opened.aclose()

        headers = {
            # Served as a download: a bridge must not become a host of active content on its domain.
            "Content-Disposition": f'attachment; filename="{_safe_filename(filename)}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        }
        if download.content_length is not None:
            headers["Content-Length"] = str(download.content_length)
        return StreamingResponse(body(), media_type=download.content_type, headers=headers,
                                 background=BackgroundTask(opened.aclose))

    async def set_nick(self, user_id: UserID, nick: str) -> str:
        problem = self._grammar.nick_problem(nick)
        if problem is not None:
            return f"{nick!r} is not a valid nick on {self.name}: {problem}."
        await self._kv_set(f"nick:{user_id}", nick)
        session = self._sessions_by_user.get(user_id)
        if session is not None:
            old = session.nick
            session.link.send_now(lines.nick(nick))
            self._own.pop(self.fold(old), None)
            self._own[self.fold(nick)] = user_id
        return f"Your nick on {self.name} is now {nick}."

    # ---- plumbing -----------------------------------------------------------------------------

    async def _kv_get(self, key: str, default: Any) -> Any:
        kv = self.ctx.kv
        return await kv.get(key, default) if kv is not None else default

    async def _kv_set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        kv = self.ctx.kv
        if kv is not None:
            await kv.set(key, value, ttl_seconds=ttl_seconds)


async def _nick_command(context: CommandContext, args: list[str]) -> CommandReply:
    networks = IrcConnector._instances
    if len(args) != 2:
        return CommandReply(f"Usage: nick <network> <nick> (networks: {', '.join(sorted(networks)) or 'none'}).")
    connector = networks.get(args[0])
    if connector is None:
        return CommandReply(f"There is no IRC network '{args[0]}' here (networks: {', '.join(sorted(networks))}).")
    return CommandReply(await connector.set_nick(context.sender, args[1]))


def _nick(event: irc.client.Event) -> str:
    source = event.source
    return str(source.nick) if hasattr(source, "nick") and source.nick else str(source)


def _argument(event: irc.client.Event) -> str | None:
    return str(event.arguments[0]) if event.arguments else None


def _tag(event: irc.client.Event, name: str) -> str | None:
    for tag in event.tags or ():
        if isinstance(tag, Mapping) and tag.get("key") == name and tag.get("value"):
            return str(tag["value"])
    return None


def _server_time(event: irc.client.Event) -> int | None:
    """When the server says the line was sent (IRCv3 server-time), in ms; None without the tag."""
    stamp = _tag(event, "time")
    if stamp is None:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _safe_filename(filename: str) -> str:
    """A name for a link and a Content-Disposition header: nothing that needs quoting there."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)[:80] or "file"


def _is_channel(target: str) -> bool:
    return target[:1] in ("#", "&", "+", "!")


_CHANNEL_HANDLERS: dict[str, Any] = {
    "pubmsg": IrcConnector._channel_message,
    "pubnotice": IrcConnector._channel_message,
    "action": IrcConnector._channel_message,
    "join": IrcConnector._join,
    "part": IrcConnector._part,
    "quit": IrcConnector._quit,
    "kick": IrcConnector._kick,
    "nick": IrcConnector._nick_change,
    "namreply": IrcConnector._names,
    "topic": IrcConnector._topic,
    "currenttopic": IrcConnector._topic,
    "mode": IrcConnector._mode,
}

__all__ = ["IrcConnector"]
