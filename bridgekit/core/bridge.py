"""The bridge core: routes stored homeserver events to connectors and answers the homeserver's
queries on their behalf.

It knows nothing of HTTP (the appservice layer calls it) and nothing of SQL beyond the inbox it
is handed (the composition root wires both).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from bridgekit.connector import (
    AliasQueryHandler,
    EphemeralHandler,
    MatrixEventHandler,
    NetworkConnector,
    PortalInfo,
    PortalResolver,
    ThirdPartyHandler,
    UserQueryHandler,
)
from bridgekit.core.dispatcher import WorkItem
from bridgekit.core.remote_delivery import DOUBLE_PUPPET_MARKER
from bridgekit.events import EphemeralEvent, MatrixEvent
from bridgekit.ids import RoomAlias, RoomID, UserID

log = logging.getLogger(__name__)


class OwnUsers:
    """Tells whether a user ID belongs to this bridge (its bot or one of its ghosts)."""

    def __init__(self, bot_user_id: str, ghost_prefixes: Sequence[str], server_name: str) -> None:
        self.bot_user_id = bot_user_id
        prefixes = "|".join(re.escape(prefix) for prefix in ghost_prefixes)
        pattern = f"@(?:{prefixes}).*:{re.escape(server_name)}" if ghost_prefixes else r"(?!)"
        self._ghost = re.compile(pattern)

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and (
            user_id == self.bot_user_id or self._ghost.fullmatch(user_id) is not None
        )


class MembershipMemory(Protocol):
    """What the Matrix client remembers of its users' memberships (``store.MatrixStateStore``)."""

    async def mark_joined(self, room_id: RoomID, user_id: UserID) -> None: ...
    async def forget_membership(self, room_id: RoomID, user_id: UserID) -> None: ...


class ManagementHandler(Protocol):
    """The management room (``core.management.ManagementRoom``): True when it consumed the event."""

    async def handle(self, event: MatrixEvent) -> bool: ...


Notifier = Callable[[RoomID, str, str, UserID], Awaitable[None]]
"""(room, text, idempotency key, user to mention) -> a notice from the bridge bot."""


AliasPortalMaker = Callable[[str, str, PortalInfo], Awaitable[RoomID]]
"""(network, alias localpart, chat) -> the portal room, created with the alias."""


class MessageRouter(Protocol):
    """Matrix -> remote routing (``core.matrix_to_remote``): True when it took the event."""

    async def route(self, event: MatrixEvent) -> bool: ...

    async def portal_network(self, room_id: RoomID) -> str | None:
        """The connector whose portal ``room_id`` is (None: no portal)."""

    async def route_ephemeral(self, event: EphemeralEvent) -> None: ...


class Bridge:
    """Connectors plus the routing between them and the inbox."""

    def __init__(
        self,
        connectors: Sequence[NetworkConnector],
        own_users: OwnUsers,
        register_user: Callable[[UserID], Awaitable[None]],
        memberships: MembershipMemory,
        management: ManagementHandler | None = None,
        router: MessageRouter | None = None,
        notify: Notifier | None = None,
        alias_prefixes: Mapping[str, str] | None = None,
        make_alias_portal: AliasPortalMaker | None = None,
    ) -> None:
        self.connectors = connectors
        """Read, never copied: the composition root builds the core first and fills this list
        when it builds the connectors (before any event is handled)."""
        self.own_users = own_users
        self._register_user = register_user
        self._memberships = memberships
        self._management = management
        self._router = router
        self._notify = notify
        self._alias_prefixes = dict(alias_prefixes or {})
        self._started = asyncio.Event()
        self._make_alias_portal = make_alias_portal

    def connectors_started(self) -> None:
        """Open the gate: events are handed to connectors from now on."""
        self._started.set()

    def needs_no_handling(self, event: MatrixEvent) -> bool:
        """The echo of what the bridge itself sent (its bot's and ghosts' messages, and what it
        posted as a double-puppeted user): handling would drop it, so the inbox need not store it.
        Membership changes of the bridge's users are kept (the bridge remembers them)."""
        if event.type == "m.room.member":
            return False
        return event.sender in self.own_users or DOUBLE_PUPPET_MARKER in event.content

    async def handle(self, item: WorkItem) -> None:
        """The inbox handler: called once per stored row, in order per room.

        Events replayed at start-up, and those arriving while connectors connect, wait here until
        :meth:`connectors_started` (they are stored already, and the room's order is kept)."""
        if not self._started.is_set():
            await self._started.wait()
        if item.kind == "pdu" and isinstance(item.event, MatrixEvent):
            await self._handle_room_event(item.event)
        elif item.kind == "ephemeral" and isinstance(item.event, EphemeralEvent):
            if self._router is not None and item.event.sender not in self.own_users:
                await self._router.route_ephemeral(item.event)
            for connector in self.connectors:
                if isinstance(connector, EphemeralHandler):
                    await connector.handle_ephemeral(item.event)
        # to-device, device lists and key counts are stored for encryption support (not yet
        # implemented); they are acknowledged and kept until pruned.

    async def _handle_room_event(self, event: MatrixEvent) -> None:
        # Every event passes here: the namespace check (a regex) is made once.
        from_us = event.sender in self.own_users
        if event.type == "m.room.member" and event.state_key in self.own_users:
            await self._remember_membership(event)
        if not from_us and self._management is not None and await self._management.handle(event):
            return  # a command (or its answer): not for the remote side
        # Our own bot's and ghosts' events are echoes of what we sent, except membership changes
        # aimed at them (an invite to a ghost is how a Matrix user starts a DM).
        if from_us and event.type != "m.room.member":
            return
        routed_to: str | None = None
        # The bot's and ghosts' own joins and leaves are not Matrix users': the router (which
        # gives a joining user their own identity on the network) never sees them.
        if not from_us and self._router is not None and await self._router.route(event):
            # A portal message, sent through the identity the routing rule chose: not for the
            # portal's own connector again. The other connectors still see the room's events (an
            # outbound webhook in a room that is an IRC channel's portal).
            routed_to = await self._router.portal_network(event.room_id)
        for connector in self.connectors:
            if connector.name != routed_to and isinstance(connector, MatrixEventHandler):
                await connector.handle_matrix_event(event)

    async def report_given_up(self, item: WorkItem, error: BaseException) -> None:
        """A Matrix message could not be handled after every attempt: say so in its room, so its
        sender does not believe the other side read it (the inbox keeps it as failed)."""
        event = item.event
        if self._notify is None or not isinstance(event, MatrixEvent) or event.type != "m.room.message":
            return
        if event.sender in self.own_users:
            return
        await self._notify(
            RoomID(event.room_id),
            # Not "retried": a delivery that failed after the room moved on (an IRC line the
            # connection could not send) is given up without another attempt.
            f"Your message could not be delivered to the other side ({type(error).__name__}), and "
            "the bridge has stopped trying. Try again later, or ask the bridge's admin.",
            f"given-up:{event.event_id}",
            UserID(event.sender),
        )

    async def _remember_membership(self, event: MatrixEvent) -> None:
        # The client remembers joins so it need not re-join before every send; a kick or ban by
        # someone else must reach that memory, or the next send fails with M_FORBIDDEN.
        user_id = UserID(event.state_key or "")
        membership = event.content.get("membership")
        if membership == "join":
            await self._memberships.mark_joined(event.room_id, user_id)
        elif membership in ("leave", "ban"):
            await self._memberships.forget_membership(event.room_id, user_id)

    async def query_user(self, user_id: UserID) -> bool:
        """True when a connector claims the user; it is registered before this returns (spec:
        the user must exist before the appservice answers 200)."""
        for connector in self.connectors:
            if isinstance(connector, UserQueryHandler) and await connector.query_user(user_id):
                await self._register_user(user_id)
                return True
        return False

    async def query_alias(self, alias: RoomAlias) -> bool:
        """True when the alias now names a room: a portal made from a connector's answer, or a
        room a connector's own handler made."""
        localpart = alias[1:].split(":", 1)[0]
        for connector in self.connectors:
            prefix = self._alias_prefixes.get(connector.name)
            if (
                isinstance(connector, PortalResolver) and self._make_alias_portal is not None
                and prefix is not None and localpart.startswith(prefix) and len(localpart) > len(prefix)
            ):
                info = await connector.portal_for_alias(localpart[len(prefix):])
                if info is not None:
                    await self._make_alias_portal(connector.name, localpart, info)
                    return True
        for connector in self.connectors:
            if isinstance(connector, AliasQueryHandler) and await connector.query_alias(alias):
                return True
        return False

    def thirdparty_handler(self, protocol: str) -> ThirdPartyHandler | None:
        for connector in self.connectors:
            if isinstance(connector, ThirdPartyHandler) and protocol in connector.protocol_ids:
                return connector
        return None

    @property
    def thirdparty_handlers(self) -> list[ThirdPartyHandler]:
        return [c for c in self.connectors if isinstance(c, ThirdPartyHandler)]

    async def thirdparty_user_by_id(self, user_id: UserID) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for handler in self.thirdparty_handlers:
            results.extend(await handler.thirdparty_user_by_id(user_id))
        return results

    async def thirdparty_location_by_alias(self, alias: RoomAlias) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for handler in self.thirdparty_handlers:
            results.extend(await handler.thirdparty_location_by_alias(alias))
        return results

    async def thirdparty_lookup(
        self, kind: str, protocol: str, fields: Mapping[str, str]
    ) -> list[dict[str, Any]] | None:
        """``None`` when no connector provides the protocol."""
        handler = self.thirdparty_handler(protocol)
        if handler is None:
            return None
        if kind == "user":
            return await handler.thirdparty_users(protocol, fields)
        return await handler.thirdparty_locations(protocol, fields)


__all__ = ["Bridge", "OwnUsers"]
