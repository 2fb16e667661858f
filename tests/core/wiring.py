"""The middle layer under test, built in one place: real core objects on a real SQLite database,
talking to a :class:`~bridgekit.testing.FakeHomeserver` and to :class:`~tests.core.network.FakeNetwork`.

This mirrors what the composition root (``bridgekit/app.py``) wires for one connector;
when the construction of the core or of connectors changes, adapt it here and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx

from bridgekit.connector import BridgeContext, NetworkConnector
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.link_approval import LinkApprovals
from bridgekit.core.management import ManagementRoom, ManagementServices
from bridgekit.core.matrix_to_remote import MatrixToRemote
from bridgekit.core.permissions import Permissions
from bridgekit.core.remote_delivery import DOUBLE_PUPPET_MARKER, RemoteDelivery, event_key
from bridgekit.core.sessions import Sessions
from bridgekit.credentials import CredentialCipher, generate_key
from bridgekit.events import EphemeralEvent, MatrixEvent, RemoteEvent
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store import Database, MatrixStateStore
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.sessions import LoginStore
from bridgekit.store.users import UserStore
from bridgekit.telemetry import BridgeMetrics
from bridgekit.testing import FakeHomeserver
from tests.core.network import NET, FakeNetwork

SERVER = "hs.test"
ADMIN = UserID("@admin:hs.test")
ALICE = UserID("@alice:hs.test")
"""Permission level 'user': may log in, gets a virtual identity where the network offers one."""
RITA = UserID("@rita:hs.test")
"""Permission level 'relay': relayed, nothing more."""
EVE = UserID("@eve:elsewhere.test")
"""Not in the permissions: the bridge ignores her."""
GHOST_PREFIX = "_net_"

PERMISSIONS: dict[str, str] = {ADMIN: "admin", ALICE: "user", RITA: "relay"}


@dataclass
class Middle:
    """The wired core: what a test drives (``remote``, ``router``, ``management``) and what it
    looks at (``homeserver`` for Matrix, ``network`` for the remote side)."""

    homeserver: FakeHomeserver
    network: FakeNetwork
    database: Database
    matrix: MatrixClient
    stores: BridgeStores
    in_flight: SendsInFlight
    remote: RemoteDelivery
    sessions: Sessions
    router: MatrixToRemote
    management: ManagementRoom
    ctx: BridgeContext
    """The connector's context: what it emits goes through ``ctx.emit``."""
    metrics: BridgeMetrics
    """The bridge's instruments, as the composition root shares them (``metrics.registry``)."""
    told: list[tuple[UserID, str]] = field(default_factory=list)
    """Private notices the core sent users (session problems)."""
    link_approvals: LinkApprovals | None = None
    """Links waiting for the network's approval (when the network is a LinkApprover)."""
    _events: int = 0

    # -- driving it ----------------------------------------------------------------------------

    async def emit(self, event: RemoteEvent, *, wait: bool = False) -> EventID | None:
        """The connector emits a network event (``ctx.emit``)."""
        return await self.ctx.emit(event, wait=wait)

    async def chat_of(self, room_id: RoomID) -> str | None:
        """The chat ``room_id`` is the portal of (the connector's ``ctx.chat_for_room``)."""
        return await self.remote.chat_for_room(NET, room_id)

    @property
    def delivery_counts(self) -> tuple[int, int]:
        """(posted, given up on) since start, as the bridge's status reports them."""
        return self.remote.sent, self.remote.failed

    async def delivered(self) -> None:
        """Wait until every emitted event is posted (or given up on)."""
        assert await self.remote.dispatcher.wait_idle(10), "remote delivery still busy after 10 s"

    async def portal(self, chat: str = "chat", *, members: tuple[UserID, ...] = (ADMIN, ALICE, RITA),
                     relay: bool | None = None) -> RoomID:
        """A Matrix room made by the admin (the bot has power there), linked to ``chat``."""
        room = RoomID(self.homeserver.add_room(
            ADMIN, members=(self.homeserver.bot_user_id, *members), power={self.homeserver.bot_user_id: 100},
        ))
        await self.remote.link_portal(NET, chat, room, relay=relay)
        return room

    def event(self, room_id: RoomID, sender: UserID, content: Mapping[str, object], *,
              event_type: str = "m.room.message", state_key: str | None = None,
              redacts: str | None = None, event_id: str | None = None) -> MatrixEvent:
        """A room event as the homeserver would push it to the appservice."""
        self._events += 1
        return MatrixEvent(
            event_id=EventID(event_id or f"$matrix{self._events}"), room_id=room_id, sender=sender, type=event_type,
            origin_server_ts=1_700_000_000_000 + self._events, content=dict(content), state_key=state_key,
            redacts=redacts,
        )

    async def say(self, room_id: RoomID, sender: UserID, body: str, **content: object) -> MatrixEvent:
        """``sender`` says ``body`` in a portal: the routing path of a Matrix message."""
        event = self.event(room_id, sender, {"msgtype": "m.text", "body": body, **content})
        await self.router.route(event)
        return event

    async def ephemeral(self, event_type: str, room_id: RoomID | None, content: Mapping[str, object],
                        sender: UserID | None = None) -> None:
        await self.router.route_ephemeral(EphemeralEvent(event_type, dict(content), room_id, sender))

    async def login(self, user_id: UserID) -> None:
        reply = await self.sessions.login(NET, user_id, "password", {"password": "s3cret"})
        assert reply.startswith("Logged in"), reply

    def context_of(self, name: str) -> BridgeContext:
        """The context of another connector (one of ``middle(also_emitting=...)``)."""
        return dataclasses.replace(self.ctx, name=name, ghost_prefix=f"_{name}_", log=logging.getLogger(name))

    def ghost(self, sender_id: str) -> UserID:
        # The default prefix (_net_ for net) already names the network: it is not repeated.
        return UserID(f"@{GHOST_PREFIX}{sender_id}:{SERVER}")


@contextlib.asynccontextmanager
async def middle(
    tmp_path: Path, network: FakeNetwork | None = None, *, max_attempts: int = 3, also_emitting: tuple[str, ...] = (),
) -> AsyncIterator[Middle]:
    """The middle layer on a fresh database in ``tmp_path``, stopped and closed afterwards.
    ``also_emitting`` names more connectors that only emit (through :meth:`Middle.context_of`)."""
    network = network or FakeNetwork()
    homeserver = FakeHomeserver(SERVER)
    for user in PERMISSIONS:
        homeserver.add_user(user, displayname=user[1:].split(":")[0].title())
    homeserver.add_user(EVE)
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'bridgekit.db'}")
    async with httpx.AsyncClient(transport=homeserver.transport) as http:
        metrics = BridgeMetrics()
        matrix = homeserver.matrix_client(http, MatrixStateStore(database), metrics=metrics)
        told: list[tuple[UserID, str]] = []

        async def notify_owner(user_id: UserID, text: str) -> None:
            told.append((user_id, text))

        connectors = {NET: cast(NetworkConnector, network)}
        sessions = Sessions(connectors, LoginStore(database), CredentialCipher(generate_key()), notify_owner)
        stores = BridgeStores(database)
        in_flight = SendsInFlight()
        prefixes = {NET: GHOST_PREFIX, **{name: f"_{name}_" for name in also_emitting}}
        remote = RemoteDelivery(
            stores, matrix, server_name=SERVER, ghost_prefixes=prefixes, max_attempts=max_attempts,
            owner_of=sessions.owner_of, report_session=sessions.report, in_flight=in_flight,
            is_puppet_owner=sessions.has_login, metrics=metrics,
        )
        permissions = Permissions.from_mapping(PERMISSIONS)
        router = MatrixToRemote(connectors, stores, matrix, permissions, sessions, in_flight, metrics=metrics)
        async def notify(room_id: RoomID, text: str, key: str, mention: UserID) -> None:
            await matrix.bot.send_text(room_id, text, msgtype="m.notice", mentions=[mention], txn_id=key)

        approvals = LinkApprovals(connectors, remote.link_portal, notify)
        services = dataclasses.replace(_services(network, remote, stores, sessions), ask_link_approval=approvals.ask)
        management = ManagementRoom(matrix, UserStore(database), permissions, services)
        await management.load()
        ctx = BridgeContext(name=NET, settings={}, matrix=matrix, bot_user_id=matrix.bot_user_id, server_name=SERVER,
                            ghost_prefix=GHOST_PREFIX, alias_prefix=GHOST_PREFIX, log=logging.getLogger(NET),
                            remote=remote, ghost_names=remote.ghost_ids, metrics_source=metrics.connector(NET))
        network.emit = ctx.emit
        await remote.start()
        wired = Middle(homeserver, network, database, matrix, stores, in_flight, remote, sessions, router,
                       management, ctx, metrics, told, approvals)
        try:
            yield wired
        finally:
            await approvals.stop()
            await remote.stop(grace_seconds=1)
            await sessions.stop()
            await database.close()


def _services(
    network: FakeNetwork, remote: RemoteDelivery, stores: BridgeStores, sessions: Sessions,
) -> ManagementServices:
    async def status() -> list[str]:
        return [f"{NET}: connected"]

    async def link_portal(net: str, chat: str, room_id: RoomID) -> str | None:
        info = await network.portal_for_alias(chat)  # the connector names the chat (a PortalResolver)
        if info is None:
            return None
        await remote.link_portal(net, info.chat_id, room_id)
        return info.chat_id

    async def set_relay(room_id: RoomID, enabled: bool) -> bool:
        portal = await stores.portals.portal_for_room(room_id)
        if portal is None:
            return False
        await stores.portals.set_relay(portal.id, enabled)
        return True

    async def double_puppet_status(_user: UserID) -> str:
        return "Double puppeting is off."

    return ManagementServices(
        status=status, link_portal=link_portal, networks=(NET,), set_relay=set_relay,
        follow_upgrade=remote.follow_upgrade, unlink_portal=remote.unlink_portal, sessions=sessions,
        login_flows=lambda net: network.login_flows if net == NET else (), double_puppet_status=double_puppet_status,
    )


# DOUBLE_PUPPET_MARKER and event_key are re-exported: where they live may change, tests take them from here.
__all__ = ["ADMIN", "ALICE", "DOUBLE_PUPPET_MARKER", "EVE", "GHOST_PREFIX", "RITA", "SERVER", "Middle", "event_key",
           "middle"]
