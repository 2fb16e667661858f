"""Matrix -> remote: a message in a portal goes out through the identity the routing rule picks.

For connectors that offer sessions (:class:`~bridgekit.connector.RelayProvider`,
:class:`~bridgekit.connector.VirtualUserProvider`, :class:`~bridgekit.connector.PuppetProvider`)
the core decides, per message, who says it (``core/routing.py``): the sender's puppet, their
virtual identity, the portal's relay, or nobody, in which case the sender is told how to get
bridged. The remote message ID a session returns is mapped to the Matrix event, so the network's
echo of it is not bridged back and replies can point at it.

Runs inside the inbox's ordered worker of the room, so messages leave in the order they were
said, and a failure is retried (then recorded) by the inbox. A session that returns
:class:`~bridgekit.connector.Accepted` (the message waits in its own queue) hands the inbox its
delivery: the room moves on, but the event counts as handled only once it is delivered.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bridgekit.connector import (
    Accepted,
    DeletingSession,
    EditingSession,
    LoginProvider,
    NetworkConnector,
    OutgoingMedia,
    OutgoingMessage,
    ReactingSession,
    ReceiptSession,
    RelayProvider,
    RemoteSession,
    TopicSession,
    TypingSession,
    VirtualUserProvider,
)
from bridgekit.core.dispatcher import defer_done, received_at
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.permissions import Permissions
from bridgekit.core.portal_membership import PortalMembership
from bridgekit.core.remote_senders import DOUBLE_PUPPET_MARKER
from bridgekit.core.routing import DEFAULT_RELAY_TEMPLATE, Route, RouteKind, RoutingFacts, choose_route, relay_text
from bridgekit.core.sessions import Sessions
from bridgekit.errors import MatrixError
from bridgekit.events import EphemeralEvent, MatrixEvent
from bridgekit.ids import ChatID, EventID, MessageID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.portals import PortalRow
from bridgekit.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

NAME_CACHE_SIZE = 50_000

_ROUTED_TYPES = frozenset({"m.room.message", "m.room.redaction", "m.reaction", "m.room.member", "m.room.topic"})


def routes_messages(connector: NetworkConnector) -> bool:
    """Whether the core routes this connector's portal messages to its sessions: it offers at
    least one, and has not declared ``portal_messages = "events"`` (checked at start-up,
    ``core/connectors.py``)."""
    offers_sessions = isinstance(connector, RelayProvider | VirtualUserProvider | LoginProvider)
    return offers_sessions and getattr(connector, "portal_messages", "sessions") != "events"


class RelayNotConnected(RuntimeError):
    """The relay was chosen but the network's bot is not connected (retried, then reported)."""


class MatrixToRemote:
    def __init__(
        self,
        connectors: Mapping[str, NetworkConnector],
        stores: BridgeStores,
        matrix: MatrixClient,
        permissions: Permissions,
        sessions: Sessions,
        in_flight: SendsInFlight,
        *,
        relay_templates: Mapping[str, str] | None = None,
        relay_default: bool = True,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._all_connectors = connectors
        """Filled when the connectors are built (after the core): read, never copied, here."""
        self._portals = stores.portals
        self._messages = stores.messages
        self._matrix = matrix
        self._permissions = permissions
        self._sessions = sessions
        self._in_flight = in_flight
        self._membership = PortalMembership(sessions, lambda network: self._connectors[network], self._route,
                                            self._session, self._display_name, self._own_session)
        self._templates = dict(relay_templates or {})
        self._relay_default = relay_default
        self._names: OrderedDict[tuple[str, str], str] = OrderedDict()
        """(room, user) -> display name, least recently used first."""
        self._typing: dict[str, set[str]] = {}
        """Room -> who was typing there, by the last m.typing (it sends the whole set)."""
        self._ephemeral_handlers: dict[str, Callable[[EphemeralEvent], Awaitable[None]]] = {
            "m.typing": self._typing_changed, "m.receipt": self._receipts, "m.presence": self._presence,
        }

    @functools.cached_property
    def _connectors(self) -> dict[str, NetworkConnector]:
        """The connectors whose portal messages go to sessions. Asked for only once events are
        handled, which waits until every connector is built and started."""
        return {name: c for name, c in self._all_connectors.items() if routes_messages(c)}

    async def portal_network(self, room_id: RoomID) -> str | None:
        """The connector whose portal ``room_id`` is (None: no portal)."""
        portal = await self._portals.portal_for_room(room_id)
        return portal.network if portal is not None else None

    async def route(self, event: MatrixEvent) -> bool:
        """Handle a portal event of a routing connector (message, edit, redaction, reaction);
        False when the event is not one."""
        if event.type not in _ROUTED_TYPES or not self._connectors:
            return False
        if DOUBLE_PUPPET_MARKER in event.content:
            return True  # sent by the bridge as a logged-in user: it came from the network
        portal = await self._portals.portal_for_room(event.room_id)
        if portal is None or portal.network not in self._connectors:
            return False
        if event.type == "m.room.member":
            await self._member(event, portal)
            return False  # the connector may care about joins and invites too
        if event.type == "m.room.topic":
            return await self._topic(event, portal)
        if event.type == "m.room.redaction":
            await self._redaction(event, portal)
            return True
        if event.type == "m.reaction":
            await self._reaction(event, portal)
            return True
        relates = event.content.get("m.relates_to")
        if isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
            await self._edit(event, portal, relates)
            return True
        body = event.content.get("body")
        if not isinstance(body, str):
            return False
        route = await self._route(event, portal)
        if route.kind is RouteKind.REFUSE:
            await self._tell(event, route.refusal or "Your message was not bridged.")
            return True
        name = await self._display_name(event)
        session = await self._session(route.kind, portal.network, UserID(event.sender), name)
        await self._send(session, portal, event, self._outgoing(event, portal, route, name, body,
                                                                 await self._reply_to(event)))
        return True

    async def _send(
        self, session: RemoteSession, portal: PortalRow, event: MatrixEvent, message: OutgoingMessage
    ) -> None:
        arrived = received_at()
        async with self._in_flight.sending(portal.network, portal.remote_id):
            sent = await session.send(message)
            remote_id = sent.message_id if isinstance(sent, Accepted) else sent
            if remote_id is not None:
                self._messages.map_matrix_message(portal.id, remote_id, event.event_id, event.sender)
        log.debug("%s sent to %s as %s", event.event_id, portal.network, remote_id, extra={
            "event_id": event.event_id, "room_id": event.room_id, "network": portal.network, "remote_id": remote_id})
        delivery = self._settled(sent.delivered if isinstance(sent, Accepted) else None, portal.network, arrived)
        if not isinstance(sent, Accepted) or not defer_done(delivery):
            await delivery  # done already, or not inside an inbox worker: nobody else would wait for it

    async def _settled(self, delivered: Awaitable[Any] | None, network: str, arrived: float) -> None:
        """The latency observed once the send returned, or its accepted message settled."""
        if delivered is not None:
            await delivered
        if arrived and self._metrics is not None:
            self._metrics.matrix_to_remote_seconds.labels(network).observe(time.monotonic() - arrived)

    async def route_ephemeral(self, event: EphemeralEvent) -> None:
        """Typing notices, read receipts and presence of portal rooms, for the users' own sessions."""
        handler = self._ephemeral_handlers.get(event.type)
        if handler is not None and self._connectors:
            await handler(event)

    async def _typing_changed(self, event: EphemeralEvent) -> None:
        """m.typing lists everyone typing in the room: who started or stopped is the difference
        from the room's last one."""
        portal = await self._ephemeral_portal(event)
        if portal is None or event.room_id is None:
            return
        listed = event.content.get("user_ids")
        now = {user for user in listed if isinstance(user, str)} if isinstance(listed, list) else set()
        before = self._typing.get(event.room_id, set())
        self._typing[event.room_id] = now
        changes = [(user, True) for user in sorted(now - before)] + [(user, False) for user in sorted(before - now)]
        for user, typing in changes:
            session = self._own_session(portal.network, UserID(user))
            if session is not None and isinstance(session, TypingSession):
                await session.set_typing(ChatID(portal.remote_id), typing)

    async def _receipts(self, event: EphemeralEvent) -> None:
        """m.receipt: each reader with a session of their own marks the network's message read."""
        portal = await self._ephemeral_portal(event)
        if portal is None:
            return
        for event_id, receipts in event.content.items():
            readers = receipts.get("m.read") if isinstance(receipts, dict) else None
            if not isinstance(readers, dict):
                continue
            sessions = {user: self._own_session(portal.network, UserID(user)) for user in readers}
            if not any(session is not None and isinstance(session, ReceiptSession) for session in sessions.values()):
                continue
            mapped = await self._messages.mapped_by_event(event_id)
            if mapped is None or mapped.origin != "remote":
                continue  # only the network's own messages can be marked read there
            for session in sessions.values():
                if session is not None and isinstance(session, ReceiptSession):
                    await session.mark_read(ChatID(portal.remote_id), MessageID(mapped.remote_id))

    async def _presence(self, event: EphemeralEvent) -> None:
        """m.presence stays on Matrix: no session ability carries it to a network. (A connector
        that wants it is an EphemeralHandler, which is given every ephemeral event.)"""

    async def _ephemeral_portal(self, event: EphemeralEvent) -> PortalRow | None:
        """The portal, of a routing connector, of the room the event is in; None for any other."""
        if event.room_id is None:
            return None
        portal = await self._portals.portal_for_room(event.room_id)
        return portal if portal is not None and portal.network in self._connectors else None

    def _own_session(self, network: str, user_id: UserID) -> RemoteSession | None:
        # Never the relay bot (it would show the bot typing), never a new virtual session.
        return self._sessions.puppet(network, user_id) or self._sessions.existing_virtual(network, user_id)

    async def _route(self, event: MatrixEvent, portal: PortalRow) -> Route:
        connector = self._connectors[portal.network]
        sender = UserID(event.sender)
        relay_on = isinstance(connector, RelayProvider) and await self._portals.relay_enabled(
            portal.id, default=self._relay_default
        )
        route = choose_route(facts := RoutingFacts(
            sender_level=self._permissions.level_for(sender),
            has_connected_puppet=self._sessions.puppet(portal.network, sender) is not None,
            network_offers_virtual=isinstance(connector, VirtualUserProvider) and connector.virtual_users,
            relay_enabled=relay_on,
            network=portal.network,
        ))
        # Opened now: a connector without an identity for them now (UseRelay) has them relayed, with the prefix.
        if route.kind is RouteKind.VIRTUAL and not await self._sessions.opens_virtual(
                portal.network, sender, await self._display_name(event)):
            return choose_route(dataclasses.replace(facts, network_offers_virtual=False))
        return route

    def _outgoing(
        self, event: MatrixEvent, portal: PortalRow, route: Route, name: str, body: str, reply_to: MessageID | None,
        *, content: Mapping[str, object] | None = None,
    ) -> OutgoingMessage:
        content = content if content is not None else event.content
        text, formatted = body, _html(content)
        if route.kind is RouteKind.RELAY:
            template = self._templates.get(portal.network, DEFAULT_RELAY_TEMPLATE)
            text = relay_text(template, name=name, user_id=event.sender, text=body)
            if formatted is not None:  # the HTML keeps the relay's prefix too
                formatted = relay_text(html.escape(template), name=html.escape(name), user_id=html.escape(event.sender),
                                       text=formatted)
        return OutgoingMessage(
            chat_id=ChatID(portal.remote_id), text=text, html=formatted,
            msgtype=str(content.get("msgtype", "m.text")),
            event_id=EventID(event.event_id), sender=UserID(event.sender), sender_name=name, reply_to=reply_to,
            media=_media(content), mentions=_mentions(content),
        )

    async def _session(self, kind: RouteKind, network: str, sender: UserID, name: str) -> RemoteSession:
        connector = self._connectors[network]
        if kind is RouteKind.PUPPET:
            puppet = self._sessions.puppet(network, sender)
            if puppet is not None:
                return puppet
        if kind is RouteKind.VIRTUAL and isinstance(connector, VirtualUserProvider):
            return await self._sessions.virtual(network, sender, name)
        if kind is RouteKind.RELAY and isinstance(connector, RelayProvider):
            session = await connector.relay_session()
            if session is not None:
                return session
        raise RelayNotConnected(f"{network}: the {kind.value} session is not available right now")

    async def _sender_session(self, event: MatrixEvent, portal: PortalRow) -> tuple[RemoteSession, Route, str] | None:
        """The session that speaks for the sender of an edit, redaction or reaction (None when
        the routing rule refuses them: their message was refused, with a notice, already)."""
        route = await self._route(event, portal)
        if route.kind is RouteKind.REFUSE:
            return None
        name = await self._display_name(event)
        return await self._session(route.kind, portal.network, UserID(event.sender), name), route, name

    async def _edit(self, event: MatrixEvent, portal: PortalRow, relates: Mapping[str, object]) -> None:
        target = relates.get("event_id")
        new_content = event.content.get("m.new_content")
        if not isinstance(target, str) or not isinstance(new_content, dict):
            return
        body = new_content.get("body")
        mapped = await self._messages.mapped_by_event(target)
        if mapped is None or mapped.origin != "matrix" or not isinstance(body, str):
            return  # an edit of something that never reached the network
        if mapped.sender_user_id != event.sender:
            # The homeserver does not check who may replace an unencrypted event (clients hide
            # such edits): through the relay, one member would rewrite another's words.
            log.info("%s tried to edit %s, sent by %s: not bridged", event.sender, target, mapped.sender_user_id)
            return
        speaking = await self._sender_session(event, portal)
        if speaking is None:
            return
        session, route, name = speaking
        if isinstance(session, EditingSession):
            message = self._outgoing(event, portal, route, name, body, None, content=new_content)
            await session.edit(ChatID(portal.remote_id), MessageID(mapped.remote_id), message)
            return
        # The network has no edits: say the correction, as people do on IRC.
        message = self._outgoing(event, portal, route, name, f"* {body}", None, content=new_content)
        await self._send(session, portal, event, message)

    async def _member(self, event: MatrixEvent, portal: PortalRow) -> None:
        """Remember display names; the user's own identity follows (``portal_membership.py``)."""
        if event.state_key is not None and event.content.get("membership") == "join":
            self._remember_name((event.room_id, event.state_key), event.content.get("displayname"), event.state_key)
        elif event.state_key is not None and event.content.get("membership") in ("leave", "ban"):
            self._names.pop((event.room_id, event.state_key), None)
        await self._membership.follow(event, portal)

    async def _topic(self, event: MatrixEvent, portal: PortalRow) -> bool:
        topic = event.content.get("topic")
        if event.state_key != "" or not isinstance(topic, str):
            return False
        speaking = await self._sender_session(event, portal)
        if speaking is None or not isinstance(speaking[0], TopicSession):
            return False
        await speaking[0].set_topic(ChatID(portal.remote_id), topic)
        return True

    async def _redaction(self, event: MatrixEvent, portal: PortalRow) -> None:
        redacts = event.redacted_event
        if redacts is None:
            return
        reaction = await self._messages.take_reaction_by_event(redacts)
        speaking = await self._sender_session(event, portal)
        if speaking is None:
            return
        session = speaking[0]
        if reaction is not None:
            message, _sender, emoji = reaction
            if isinstance(session, ReactingSession):
                await session.unreact(ChatID(portal.remote_id), MessageID(message.remote_id), emoji)
            return
        mapped = await self._messages.mapped_by_event(redacts)
        if mapped is None:
            return
        if isinstance(session, DeletingSession):
            await session.delete(ChatID(portal.remote_id), MessageID(mapped.remote_id))
        else:
            log.info("%s cannot delete messages; the redaction of %s stays on Matrix", portal.network, redacts)

    async def _reaction(self, event: MatrixEvent, portal: PortalRow) -> None:
        relates = event.content.get("m.relates_to")
        if not isinstance(relates, dict) or relates.get("rel_type") != "m.annotation":
            return
        target, key = relates.get("event_id"), relates.get("key")
        if not isinstance(target, str) or not isinstance(key, str):
            return
        mapped = await self._messages.mapped_by_event(target)
        speaking = await self._sender_session(event, portal) if mapped is not None else None
        if mapped is None or speaking is None or not isinstance(speaking[0], ReactingSession):
            return
        await speaking[0].react(ChatID(portal.remote_id), MessageID(mapped.remote_id), key)
        await self._messages.add_reaction(mapped.id, event.sender, key, event.event_id)

    async def _display_name(self, event: MatrixEvent) -> str:
        """The sender's name in that room (per-room names win), else their localpart.

        Remembered per (room, user) and kept in step by the member events the bridge sees, so a
        message costs no request to the homeserver (that round trip was most of the latency)."""
        key = (event.room_id, event.sender)
        cached = self._names.get(key)
        if cached is not None:
            self._names.move_to_end(key)
            return cached
        try:
            member = await self._matrix.bot.get_state(RoomID(event.room_id), "m.room.member", event.sender)
        except MatrixError:
            member = {}
        return self._remember_name(key, member.get("displayname"), event.sender)

    def _remember_name(self, key: tuple[str, str], displayname: object, user_id: str) -> str:
        name = displayname if isinstance(displayname, str) and displayname.strip() else user_id.split(":", 1)[0][1:]
        self._names[key] = name
        self._names.move_to_end(key)
        while len(self._names) > NAME_CACHE_SIZE:
            self._names.popitem(last=False)
        return name

    async def _reply_to(self, event: MatrixEvent) -> MessageID | None:
        relates = event.content.get("m.relates_to")
        reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
        target = reply.get("event_id") if isinstance(reply, dict) else None
        remote_id = await self._messages.remote_id_for(target) if isinstance(target, str) else None
        return MessageID(remote_id) if remote_id is not None else None

    async def _tell(self, event: MatrixEvent, text: str) -> None:
        await self._matrix.bot.send_text(
            RoomID(event.room_id), text, msgtype="m.notice", mentions=[UserID(event.sender)],
            txn_id=f"refused:{event.event_id}",
        )


_MEDIA_TYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})


def _media(content: Mapping[str, object]) -> OutgoingMedia | None:
    url = content.get("url")
    if content.get("msgtype") not in _MEDIA_TYPES or not isinstance(url, str) or not url.startswith("mxc://"):
        return None
    info = content.get("info")
    info = info if isinstance(info, dict) else {}
    name = content.get("filename") or content.get("body")
    size = info.get("size")
    mimetype = info.get("mimetype")
    return OutgoingMedia(
        mxc=url, filename=name if isinstance(name, str) and name else "file",
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        mimetype=mimetype if isinstance(mimetype, str) else None,
    )


def _mentions(content: Mapping[str, object]) -> tuple[UserID, ...]:
    mentions = content.get("m.mentions")
    users = mentions.get("user_ids") if isinstance(mentions, dict) else None
    return tuple(UserID(u) for u in users if isinstance(u, str)) if isinstance(users, list) else ()


def _html(content: Mapping[str, object]) -> str | None:
    if content.get("format") == "org.matrix.custom.html":
        formatted = content.get("formatted_body")
        return formatted if isinstance(formatted, str) else None
    return None


__all__ = ["MatrixToRemote", "RelayNotConnected", "routes_messages"]
