"""Puppeted mode: a Matrix user's own IRC account (``login <network>`` in the management room).

The core runs the login flow and keeps the credentials sealed (``CredentialCipher``); this module
is the IRC side of :class:`~bridgekit.LoginProvider`:

- :meth:`Puppets.check` (``login``): one connection with the account, identified by SASL PLAIN or
  NickServ (``identify.py``), then closed: a refusal is :class:`~bridgekit.LoginFailed` with the
  server's own words, after that one attempt (never retried).
- :meth:`Puppets.connect` (``connect_puppet``: after login, at every start, on ``reconnect``): the
  user's connection, with their own nick (the nick they chose with ``nick``, else their account
  name; no ``[m]``). The routing rule prefers it to their virtual connection. It never idles out,
  and when the server drops it, it is made again (2 s, 4 s ... up to 2 minutes apart) and rejoins
  its channels, for as long as the user stays logged in, bouncer style; a refused account stops
  that (``BAD_CREDENTIALS``).
  What is said in channels meanwhile reaches their rooms anyway: the bot is the one listener.
- Their account name, folded, is their ``remote_user_id``: lines from their other IRC clients
  logged into the same account are posted as them on Matrix (``account_senders.py``).
"""

from __future__ import annotations

import asyncio
import logging

from bridgekit import (
    BridgeContext,
    LoginFailed,
    LoginField,
    LoginFlow,
    PuppetLogin,
    RemoteUserID,
    SessionKind,
    SessionState,
    UserID,
)
from bridges.irc import lines
from bridges.irc.account_login import AccountLogin
from bridges.irc.link import AccountRefused, RegistrationFailed
from bridges.irc.link_protocol import Link, NewLink
from bridges.irc.nicks import ident_for, matrix_user_nick
from bridges.irc.session import IrcSession, SessionSetup

log = logging.getLogger(__name__)

LOGIN_FLOWS = (LoginFlow("password", "account and password", (
    LoginField("account", "Your IRC account name (as registered with NickServ)?"),
    LoginField("password", "Your IRC account password?", secret=True),
)),)
MAX_RECONNECT_DELAY_S = 120.0



class Puppets:
    def __init__(self, ctx: BridgeContext, setup: SessionSetup, new_link: NewLink) -> None:
        self._ctx = ctx
        self._setup = setup
        self._network = setup.network
        self._new_link = new_link
        self.by_user: dict[UserID, IrcSession] = {}
        self._reconnects: dict[UserID, asyncio.Task[None]] = {}
        self._stopping = False

    # ---- LoginProvider -------------------------------------------------------------------------

    async def check(self, user_id: UserID, answers: dict[str, str]) -> PuppetLogin:
        account, password = answers.get("account", "").strip(), answers.get("password", "")
        self._valid(account, password)
        link = self._link(user_id, account, password, nick=account, login_check=True)
        try:
            await link.connect()
        except AccountRefused as refused:
            raise LoginFailed(str(refused)) from None
        except (OSError, RegistrationFailed) as error:
            raise LoginFailed(f"cannot reach {self._network.name}: {error}", bad_credentials=False) from None
        finally:
            await link.close("login checked")
        return PuppetLogin(RemoteUserID(self._network.fold(account)), account,
                           {"account": account, "password": password})

    async def connect(self, user_id: UserID, login: PuppetLogin) -> IrcSession:
        account, password = login.credentials.get("account", ""), login.credentials.get("password", "")
        self._valid(account, password)
        self._network.accounts.add(self._network.fold(account))
        self._cancel_reconnect(user_id)
        link = self._link(user_id, account, password, nick=await self._nick(user_id, account))
        try:
            await link.connect()
        except AccountRefused as refused:
            raise LoginFailed(f"{self._network.name} no longer accepts this account: {refused}") from None
        session = IrcSession(SessionKind.PUPPET, link, self._setup, owner=user_id, on_close=self._closed,
                             on_reconnect=self._reconnected)
        self.by_user[user_id] = session
        self._network.claim(link.nick, user_id)
        return session

    def forget(self, user_id: UserID, login: PuppetLogin) -> None:
        """``logout``: the core closed the session already; the account is no longer theirs here."""
        self._cancel_reconnect(user_id)
        self._network.accounts.discard(str(login.remote_user_id))

    # ---- the connection's life -----------------------------------------------------------------

    def of(self, link: Link) -> IrcSession | None:
        return next((s for s in self.by_user.values() if s.link is link), None)

    async def dropped(self, session: IrcSession) -> None:
        """The server hung up on a puppet (not closed on purpose): connect again, bouncer style."""
        owner = session.owner
        if owner is None or self._stopping or session.closed:
            return
        self._network.release(session.nick)
        await self._ctx.report_session(owner, SessionState.TRANSIENT_DISCONNECT, "the IRC server hung up; reconnecting")
        if owner not in self._reconnects:
            task = asyncio.create_task(self._reconnect(owner, session, rejoin=set(session.joined)))
            self._reconnects[owner] = task
            task.add_done_callback(lambda done: self._reconnects.pop(owner, None) if
                                   self._reconnects.get(owner) is done else None)

    async def _reconnect(self, owner: UserID, session: IrcSession, *, rejoin: set[str]) -> None:
        """Until connected again (or logged out); then back into the channels it was in."""
        delay = 2.0
        while not (self._stopping or session.closed or session.link.connected):
            try:
                await session.reconnect()
                for chat in rejoin - session.joined:
                    session.link.send(lines.join(self._network.channel_name(chat)))
                    session.joined.add(chat)
                return
            except AccountRefused as refused:
                await self._ctx.report_session(owner, SessionState.BAD_CREDENTIALS, str(refused))
                return  # the same password again cannot help: the user logs in again
            except (OSError, RegistrationFailed) as error:
                log.info("%s: reconnecting %s's own connection failed (%s); again in %.0f s", self._network.name,
                         owner, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY_S)

    async def _reconnected(self, session: IrcSession) -> None:
        if session.owner is not None:
            self._network.claim(session.nick, session.owner)
            await self._ctx.report_session(session.owner, SessionState.CONNECTED)

    async def _closed(self, session: IrcSession) -> None:
        if session.owner is not None and self.by_user.get(session.owner) is session:
            del self.by_user[session.owner]
            self._cancel_reconnect(session.owner)
        self._network.release(session.nick)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._reconnects.values()):
            task.cancel()
        for session in list(self.by_user.values()):
            await session.link.close("bridge shutting down", fail_unsettled=False)

    # ---- helpers -------------------------------------------------------------------------------

    def _cancel_reconnect(self, user_id: UserID) -> None:
        task = self._reconnects.pop(user_id, None)
        if task is not None:
            task.cancel()

    def _valid(self, account: str, password: str) -> None:
        # Both go out in one IRC line (AUTHENTICATE's payload, or NickServ's identify text).
        if not account or any(c in account for c in " \r\n\0"):
            raise LoginFailed("an account name has no spaces or line breaks")
        if not password or any(c in password for c in "\r\n\0"):
            raise LoginFailed("a password has no line breaks")

    async def _nick(self, user_id: UserID, account: str) -> str:
        """Their chosen nick (``nick <network> <nick>``), else their account name when it is a nick."""
        grammar = self._network.grammar
        chosen = await self._setup.records.chosen_nick(user_id)
        if chosen is not None and grammar.is_nick(chosen):
            return chosen
        if grammar.is_nick(account):
            return account
        return matrix_user_nick("{localpart}", displayname=None, user_id=user_id, nicklen=grammar.nicklen)

    def _link(self, user_id: UserID, account: str, password: str, *, nick: str, login_check: bool = False) -> Link:
        """``login_check``: the one-off connection of ``login`` (with a keeper, not the puppet's ID:
        checking a new password never takes over, or closes, the puppet already connected)."""
        settings = self._setup.settings
        return self._new_link(
            nick, ident=ident_for(user_id), realname=settings.realname_template.format(user_id=user_id), owner=user_id,
            account=AccountLogin(account, password, settings.login_method), login_check=login_check,
        )


__all__ = ["LOGIN_FLOWS", "Puppets"]
