"""One IRC network's connections held by a keeper, as the connector sees them.

The connector asks this for its links (``link``), and before its bot connects it pairs with the
keeper (``start``: versions checked, then it adopts what the keeper held while the bridge was
away). Redis out of reach then is :class:`KeeperUnreachable`, an ``OSError``: the connector waits
and tries again as it does for an IRC server that is down, the rest of the bridge serving
meanwhile, and no connection of the network is opened until it is paired. Adopting: the Matrix
users' connections become their sessions again, as they are (no QUIT, JOIN or NICK on IRC), and
the bot's, opened again, answers with its channels and their members. Then ``listen`` hands the
connector every event heard, in order, from where the last run stopped; but a gap the keeper
tells (its own restart) becomes one notice in each portal of the network, as the bridge's own
downtime does (:mod:`bridges.irc.downtime`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import irc.client
from redis.asyncio import Redis

from bridgekit import BridgeContext, UserID
from bridges.irc.account_login import AccountLogin
from bridges.irc.downtime import Outage, tell_portals
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper import streams
from bridges.irc.keeper.client import KeeperClient
from bridges.irc.keeper.kept_link import KeptLink
from bridges.irc.keeper.sealing import cipher_from, seal
from bridges.irc.keeper.sharing import Placement, group_scope, list_group
from bridges.irc.link import RegistrationFailed
from bridges.irc.link_protocol import Link
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords
from bridges.irc.settings import IrcSettings, KeeperSettings
from bridges.irc.user_connections import UserConnections

log = logging.getLogger(__name__)

NEXT_NICKS = 20
"""Fallback nicks sent with a connection's spec (the keeper cannot call the bridge's chooser)."""

LinkHandler = Callable[[Link, irc.client.Event], Awaitable[None]]


class KeeperUnreachable(OSError):
    """The keeper's Redis cannot be reached: the network waits for it (the bridge goes on)."""


class KeptNetwork:
    def __init__(self, ctx: BridgeContext, settings: IrcSettings, keeper: KeeperSettings, records: IrcRecords,
                 network: IrcNetwork) -> None:
        self.name = name = network.name
        self._ctx = ctx
        self._settings = settings
        self._keeper = keeper
        self._records = records
        self._network = network
        redis = Redis.from_url(keeper.redis_url, decode_responses=True)
        group = keeper.group
        self.client = KeeperClient(redis, name, group_scope(group) if group else keeper.keeper_id,
                                   placement=Placement(redis, group) if group else None)
        self.client.paired = False  # until ``start``
        self._reached = False
        self.links: dict[str, KeptLink] = {}
        self._cipher = cipher_from()
        self._listening: asyncio.Task[None] | None = None

    async def start(self, users: UserConnections) -> None:
        """Pair with the keeper, once: its protocol version checked (``KeeperMismatch``), then what
        it holds adopted. Raises :class:`KeeperUnreachable` while its Redis is out of reach."""
        if self.client.paired:
            return
        if not self._reached:
            try:
                await self.client.start()
            except streams.TRANSIENT as error:
                raise KeeperUnreachable(f"the connection keeper's Redis at {_where(self._keeper.redis_url)} is out "
                                        f"of reach: {error}") from None
            self._reached = True  # (the client's readers and writer run from here: started once)
        await self.adopt(users)
        self.client.paired = True

    async def adopt(self, users: UserConnections) -> int:
        """The Matrix users' connections the keeper holds become their sessions again."""
        try:
            if self._keeper.group:  # several keepers: each lists its own
                answer = await list_group(self.client, self._keeper.group, self._keeper.reply_timeout_seconds)
            else:
                answer = await asyncio.wait_for(self.client.command("list", "", {"network": self.name}),
                                                self._keeper.reply_timeout_seconds)
        except TimeoutError:
            log.warning("%s: the IRC keeper %r did not answer: no connections adopted (is it running?)", self.name,
                        self._keeper.keeper_id)
            return 0
        if not answer.ok:
            raise RegistrationFailed(f"{self.name}: {answer.error}")
        # Making 10,000 links and sessions allocates millions of objects, all of them kept: the
        # cyclic collector's passes over the growing heap found nothing and took seconds (the
        # adoption's own work is about 0.5 s). Paused for this loop only (it has no await).
        collecting = gc.isenabled()
        gc.disable()
        try:
            adopted = self._adopt_listed(answer.data, users)
        finally:
            if collecting:
                gc.enable()
        if adopted:
            log.info("%s: adopted %d connection(s) the IRC keeper held", self.name, adopted)
        return adopted

    def _adopt_listed(self, data: dict[str, Any], users: UserConnections) -> int:
        connections = p.resolve_isupports(data).get("connections", {})
        adopted = 0
        for conn, state in connections.items():
            kind, owner = p.connection_owner(conn)
            if kind != "user" or owner is None:
                # The bot's is opened again; a puppet's is taken back as it is when the core
                # connects it (``connect_puppet``, same ID); a password check's was left behind.
                continue
            spec = p.ConnectionSpec.from_dict(data["specs"][conn])
            link = KeptLink.adopted(self.client, spec, state, persist=self._keeper.persist_connections_on_shutdown,
                                    timeout=self._keeper.reply_timeout_seconds)
            self.links[conn] = link
            users.adopt(link, UserID(owner))
            adopted += 1
        return adopted

    def link(self, nick: str, *, ident: str, realname: str, owner: UserID | None, caps: tuple[str, ...],
             next_nick: Callable[[int], str], account: AccountLogin | None = None,
             login_check: bool = False) -> KeptLink:
        """``account``: a puppet's (or, with ``login_check``, the password being checked at
        ``login``): sealed with the server password, and the keeper identifies with it."""
        settings, conn = self._settings, p.connection_id(self.name, owner, _kind(account, login_check))
        spec = p.ConnectionSpec(
            conn=conn, network=self.name, host=settings.server, port=settings.port, tls=settings.tls, nick=nick,
            ident=ident, realname=realname, caps=caps, next_nicks=tuple(next_nick(n) for n in range(1, NEXT_NICKS + 1)),
            lines_per_second=settings.lines_per_second, burst=settings.burst, keepalive=settings.keepalive_seconds,
            members=owner is None, sealed=seal(self._cipher, conn, password=settings.password, account=account),
            nickserv_nick=settings.nickserv_nick, nickserv_identify=settings.nickserv_identify,
        )
        link = KeptLink(self.client, spec, persist=self._keeper.persist_connections_on_shutdown,
                        timeout=self._keeper.reply_timeout_seconds)
        self.links[conn] = link
        return link

    def bot_opened(self, link: Link) -> None:
        """The bot's channels and their members, as the keeper knew them (it was not rejoined)."""
        for channel in link.state.channels.values():
            self._network.channel(channel.name).members.update(channel.members)

    def listen(self, handler: LinkHandler) -> None:
        """Start handing the connector what the connections hear (once; after the bot is open)."""
        if self._listening is not None:
            return

        async def handle(conn: str, event: irc.client.Event) -> None:
            gap = p.gap_of(event) if conn == p.gap_connection(self.name) else None
            if gap is not None:
                await self._tell_gap(*gap)
                return
            link = self.links.get(conn)
            if link is None:
                return  # a connection closed since (idle, logout): nobody listens on it
            handled = link.heard(event)  # (a refusal in the keeper becomes the link's disconnect)
            if handled is not None:
                await handler(link, handled)

        cursor = (lambda: self._records.get("keeper_inbound_last", None),
                  lambda entry: self._records.set("keeper_inbound_last", entry))
        self._listening = asyncio.create_task(self.client.listen(handle, cursor))

    async def _tell_gap(self, keeper_id: str, began: float, ended: float) -> None:
        """The keeper was down (any length: its restart dropped every connection). The notice's
        ID names the keeper and the gap's start: told twice (a crash), it is posted once."""
        gap = Outage(began, ended, subject="The IRC connection keeper")
        await tell_portals(self._ctx, gap, self._settings.bot_nick, key=f"keeper-offline:{keeper_id}:{int(began)}")

    async def stop(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
        await self.client.stop()


def _where(redis_url: str) -> str:
    """Redis's address for messages and /health: never the URL, which may hold its password."""
    parts = urlsplit(redis_url)
    return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


def _kind(account: AccountLogin | None, login_check: bool) -> p.ConnectionKind:
    """A Matrix user's connection: a password being checked, their puppet, or their virtual one."""
    if login_check:
        return "login"
    return "puppet" if account is not None else "user"


__all__ = ["KeeperUnreachable", "KeptNetwork"]
