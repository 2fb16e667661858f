"""Matrix users' own connections to one IRC network (``virtual_users``): made when a user first
speaks, named by ``nick_template`` or the nick they chose, connected again when the server drops
one while lines they sent are still queued, and forgotten when closed (idle, logout). At most
``max_clients`` of them with the logged-in users' connections: past it, ``UseRelay`` (the core
relays the user instead). One per user: the core asks for one only when the user has none open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bridgekit import BridgeContext, SessionKind, SessionState, UseRelay, UserID
from bridges.irc import lines
from bridges.irc.link import RegistrationFailed
from bridges.irc.link_protocol import Link, NewLink
from bridges.irc.nicks import ident_for, matrix_user_nick
from bridges.irc.reconnects import Backoff, Refusal, read_refusal
from bridges.irc.session import IrcSession, SessionSetup

log = logging.getLogger(__name__)

REDELIVERY_ATTEMPTS = 6
"""Tries (about 2, 4 ... 32 s apart, with jitter: about a minute; a minute or more apart when the
server throttles us; none after a ban, see ``reconnects.py``) to connect a user's dropped
connection again while lines they sent are still queued; then the Matrix messages waiting on them
are given up (the core tells their senders)."""



class UserConnections:
    def __init__(self, ctx: BridgeContext, setup: SessionSetup, new_link: NewLink) -> None:
        self._ctx = ctx
        self._setup = setup
        self._network = setup.network
        self._new_link = new_link
        self.by_user: dict[UserID, IrcSession] = {}
        self._redeliveries: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._opening: set[UserID] = set()
        self.logged_in: Mapping[UserID, object] = {}
        """Logged-in users' connections (the connector's puppets): counted by ``max_clients``."""

    def _check_cap(self, user_id: UserID) -> None:
        """``max_clients``: Matrix users' connections (virtual and logged-in) open or opening on
        the network, this user's own dropped one not counted (it is replaced, not added to)."""
        cap = self._setup.settings.max_clients
        held = len(self.by_user) - (user_id in self.by_user) + len(self.logged_in) + len(self._opening)
        if cap and held >= cap:
            raise UseRelay(f"{self._network.name} has reached the bridge's limit of {cap} connections "
                           "(max_clients), so you have no connection of your own there.")

    async def open(self, user_id: UserID, display_name: str) -> IrcSession:
        adopted = self.by_user.get(user_id)
        if adopted is not None and adopted.link.connected:
            return adopted  # held by the keeper across the bridge's restart
        self._check_cap(user_id)
        self._opening.add(user_id)  # counted while it connects: two at once must not both pass the cap
        try:
            return await self._open(user_id, display_name)
        finally:
            self._opening.discard(user_id)

    async def _open(self, user_id: UserID, display_name: str) -> IrcSession:
        settings, grammar, name = self._setup.settings, self._network.grammar, self._network.name
        wanted = await self._setup.records.chosen_nick(user_id)
        # Checked again: the network's NICKLEN or grammar may be stricter than when it was chosen.
        nick = wanted if wanted is not None and grammar.is_nick(wanted) else matrix_user_nick(
            settings.nick_template, displayname=display_name, user_id=user_id, nicklen=grammar.nicklen,
        )
        realname = settings.realname_template.format(user_id=user_id)
        link = self._new_link(nick, ident=ident_for(user_id), realname=realname, owner=user_id)
        await link.connect()
        session = IrcSession(SessionKind.VIRTUAL, link, self._setup, owner=user_id, on_close=self.closed,
                             on_reconnect=self._reconnected)
        self.by_user[user_id] = session
        self._network.claim(link.nick, user_id)
        if link.nick != nick:
            await self._ctx.tell_user(user_id, (
                f"On {name}, the nick {nick} is taken, so you are {link.nick}. Choose another with "
                f"'nick {name} <nick>' in this room."
            ))
        return session

    def adopt(self, link: Link, owner: UserID) -> IrcSession:
        """A connection the keeper held while the bridge was away: the user's session again, in
        the channels it is in (``joined`` keyed by chat ID, the folded channel name)."""
        session = IrcSession(SessionKind.VIRTUAL, link, self._setup, owner=owner, on_close=self.closed,
                             on_reconnect=self._reconnected)
        session.joined.update(self._network.fold(channel.name) for channel in link.state.channels.values())
        self.by_user[owner] = session
        self._network.claim(link.nick, owner)
        return session

    async def _reconnected(self, session: IrcSession) -> None:
        if session.owner is not None:
            self.by_user[session.owner] = session
            self._network.claim(session.nick, session.owner)
            await self._ctx.report_session(session.owner, SessionState.CONNECTED)

    async def closed(self, session: IrcSession) -> None:
        if session.owner is not None and self.by_user.get(session.owner) is session:
            del self.by_user[session.owner]
        self._network.release(session.nick)

    def of(self, link: Link) -> IrcSession | None:
        return next((s for s in self.by_user.values() if s.link is link), None)

    async def set_nick(self, user_id: UserID, nick: str) -> str:
        name = self._network.name
        problem = self._network.grammar.nick_problem(nick)
        if problem is not None:
            return f"{nick!r} is not a valid nick on {name}: {problem}."
        await self._setup.records.choose_nick(user_id, nick)
        session = self.by_user.get(user_id)
        if session is not None:
            old = session.nick
            session.link.send_now(lines.nick(nick))
            self._network.release(old)
            self._network.claim(nick, user_id)
        return f"Your nick on {name} is now {nick}."

    async def dropped(self, session: IrcSession) -> None:
        """The server hung up on ``session`` (not closed on purpose)."""
        owner = session.owner
        if owner is None or self._stopping or session.closed:
            return
        await self._ctx.report_session(owner, SessionState.TRANSIENT_DISCONNECT, "the IRC server hung up")
        if session.link.has_unsent:
            # Lines the user sent are still queued (pacing) or unechoed: connect again now to send
            # them, rather than when they next speak.
            task = asyncio.create_task(self._redeliver(owner, session))
            self._redeliveries.add(task)
            task.add_done_callback(self._redeliveries.discard)
        else:
            await self.closed(session)

    async def _redeliver(self, user: UserID, session: IrcSession) -> None:
        backoff, name = Backoff(cap=32.0), self._network.name
        last_words = session.link.state.failure  # what the server said as it hung up, if anything
        for attempt in range(REDELIVERY_ATTEMPTS):
            if self._stopping or session.closed or session.link.connected:
                return
            refusal = read_refusal(last_words)
            if attempt or refusal is not Refusal.NONE:
                wait = backoff.next_wait(refusal)
                if wait is None:
                    break  # banned: trying again only makes it worse
                await asyncio.sleep(wait)
            try:
                await session.reconnect()
                return
            except (OSError, RegistrationFailed) as error:
                log.info("%s: reconnecting %s to send queued lines failed (%s)", name, user, error)
                last_words = str(error)
        unsent = session.link.take_unsent()
        await self.closed(session)
        for line in unsent:
            # The delivery of a Matrix message waits on these: it fails, and the core tells its sender.
            line.fail(ConnectionError(f"could not connect to {name} again"))
        lost = [line for line in unsent if line.settled is None]
        if lost:
            why = f" ({name} said: {last_words})" if last_words else ""
            await self._ctx.tell_user(user, (
                f"The connection to {name} dropped and could not be made again{why}, so your last "
                f"{len(lost)} line(s) were not delivered to IRC."
            ))

    async def stop(self) -> None:
        """Lines still unsettled after the grace keep their Matrix events unhandled: replayed at
        the next start (the progress of long messages makes that send only the rest)."""
        self._stopping = True
        for task in list(self._redeliveries):
            task.cancel()
        for session in list(self.by_user.values()):
            await session.link.close("bridge shutting down", fail_unsettled=False)


__all__ = ["UserConnections"]
