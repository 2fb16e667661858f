"""Matrix -> remote: a message in a portal goes out through the identity the routing rule picks.

For connectors that offer sessions (:class:`~bridgekit.connector.RelayProvider`,
:class:`~bridgekit.connector.VirtualUserProvider`, :class:`~bridgekit.connector.PuppetProvider`)
the core decides, per message, who says it (``core/routing.py``): the sender's puppet, their
virtual identity, the portal's relay, or nobody, in which case the sender is told how to get
bridged. The remote message ID a session returns is mapped to the Matrix event, so the network's
echo of it is not bridged back and replies can point at it.

Runs inside the inbox's ordered worker of the room, so messages leave in the order they were
said, and a failure is retried (then recorded) by the inbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bridgekit.connector import (
    NetworkConnector,
    OutgoingMessage,
    PuppetProvider,
    RelayProvider,
    RemoteSession,
    VirtualUserProvider,
)
from bridgekit.core.permissions import Permissions
from bridgekit.core.routing import DEFAULT_RELAY_TEMPLATE, RouteKind, RoutingFacts, choose_route, relay_text
from bridgekit.errors import MatrixError
from bridgekit.events import MatrixEvent
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store.outbox import OutboxStore

log = logging.getLogger(__name__)


def routes_messages(connector: NetworkConnector) -> bool:
    """Whether the core routes this connector's portal messages (it offers at least one session)."""
    return isinstance(connector, RelayProvider | VirtualUserProvider | PuppetProvider)


class RelayNotConnected(RuntimeError):
    """The relay was chosen but the network's bot is not connected (retried, then reported)."""


class MatrixToRemote:
    def __init__(
        self,
        connectors: Mapping[str, NetworkConnector],
        store: OutboxStore,
        matrix: MatrixClient,
        permissions: Permissions,
        *,
        relay_templates: Mapping[str, str] | None = None,
        relay_default: bool = True,
    ) -> None:
        self._connectors = {name: c for name, c in connectors.items() if routes_messages(c)}
        self._store = store
        self._matrix = matrix
        self._permissions = permissions
        self._templates = dict(relay_templates or {})
        self._relay_default = relay_default

    async def route(self, event: MatrixEvent) -> bool:
        """Send a portal message of a routing connector; False when the event is not one."""
        if event.type != "m.room.message" or not self._connectors:
            return False
        body = event.content.get("body")
        if not isinstance(body, str):
            return False
        portal = await self._store.portal_for_room(event.room_id)
        if portal is None or portal.network not in self._connectors:
            return False
        connector = self._connectors[portal.network]
        sender = UserID(event.sender)
        puppet = connector.puppet_session(sender) if isinstance(connector, PuppetProvider) else None
        relay_on = isinstance(connector, RelayProvider) and await self._store.relay_enabled(
            portal.id, default=self._relay_default
        )
        route = choose_route(RoutingFacts(
            sender_level=self._permissions.level_for(sender),
            has_connected_puppet=puppet is not None,
            network_offers_virtual=isinstance(connector, VirtualUserProvider) and connector.virtual_users,
            relay_enabled=relay_on,
            network=portal.network,
        ))
        if route.kind is RouteKind.REFUSE:
            await self._tell(event, route.refusal or "Your message was not bridged.")
            return True
        name = await self._display_name(event)
        session = await self._session(route.kind, connector, sender, name, puppet)
        text = body
        if route.kind is RouteKind.RELAY:
            template = self._templates.get(portal.network, DEFAULT_RELAY_TEMPLATE)
            text = relay_text(template, name=name, user_id=sender, text=body)
        remote_id = await session.send(OutgoingMessage(
            chat_id=portal.remote_id, text=text, html=_html(event), msgtype=str(event.content.get("msgtype", "m.text")),
            event_id=EventID(event.event_id), sender=sender, sender_name=name, reply_to=await self._reply_to(event),
        ))
        if remote_id is not None:
            await self._store.map_matrix_message(portal.id, remote_id, event.event_id, sender)
        return True

    async def _session(
        self, kind: RouteKind, connector: NetworkConnector, sender: UserID, name: str, puppet: RemoteSession | None
    ) -> RemoteSession:
        if kind is RouteKind.PUPPET and puppet is not None:
            return puppet
        if kind is RouteKind.VIRTUAL and isinstance(connector, VirtualUserProvider):
            return await connector.virtual_session(sender, name)
        if kind is RouteKind.RELAY and isinstance(connector, RelayProvider):
            session = await connector.relay_session()
            if session is not None:
                return session
        raise RelayNotConnected(f"{connector.name}: the {kind.value} session is not available right now")

    async def _display_name(self, event: MatrixEvent) -> str:
        """The sender's name in that room (per-room names win), else their localpart."""
        try:
            member = await self._matrix.bot.get_state(RoomID(event.room_id), "m.room.member", event.sender)
        except MatrixError:
            member = {}
        name = member.get("displayname")
        return name if isinstance(name, str) and name.strip() else event.sender.split(":", 1)[0].lstrip("@")

    async def _reply_to(self, event: MatrixEvent) -> str | None:
        relates = event.content.get("m.relates_to")
        reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
        target = reply.get("event_id") if isinstance(reply, dict) else None
        return await self._store.remote_id_for(target) if isinstance(target, str) else None

    async def _tell(self, event: MatrixEvent, text: str) -> None:
        await self._matrix.bot.send_text(
            RoomID(event.room_id), text, msgtype="m.notice", mentions=[UserID(event.sender)],
            txn_id=f"refused:{event.event_id}",
        )


def _html(event: MatrixEvent) -> str | None:
    if event.content.get("format") == "org.matrix.custom.html":
        formatted = event.content.get("formatted_body")
        return formatted if isinstance(formatted, str) else None
    return None


__all__ = ["MatrixToRemote", "RelayNotConnected", "routes_messages"]
