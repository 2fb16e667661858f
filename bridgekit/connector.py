"""The connector contract: what a network connector implements, and what it may call.

This is the first cut, enough for the appservice core (issue: foundation); the full contract
(sessions, modes, remote events, optional abilities) grows here, in this one file.

A connector is a class with a ``name`` and the four lifecycle/handling methods of
:class:`NetworkConnector`. Optional abilities are separate small protocols, checked at run time
with ``isinstance``: a connector implements only what its network has.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from bridgekit.events import EphemeralEvent, MatrixEvent, RemoteMessage
from bridgekit.ids import EventID, RoomAlias, RoomID, UserID

if TYPE_CHECKING:
    import logging


class MatrixAPI(Protocol):
    """The part of the Matrix client a connector uses (``bridgekit.matrix.MatrixClient``)."""

    def intent(self, user_id: UserID) -> Any: ...


class RemoteSink(Protocol):
    """Where remote events go (the core's remote -> Matrix delivery)."""

    async def emit(self, network: str, event: RemoteMessage) -> None: ...

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID) -> None: ...


@dataclass(frozen=True)
class BridgeContext:
    """What the core hands a connector at start: its config section, the Matrix side, a logger."""

    name: str
    settings: Any
    """The connector's own config section: an instance of its ``Settings`` model when it declares
    one (see :class:`ConfiguredConnector`), else the raw mapping of its keys."""
    matrix: MatrixAPI
    bot_user_id: UserID
    server_name: str
    ghost_prefix: str
    alias_prefix: str
    log: logging.Logger
    remote: RemoteSink

    def ghost_user_id(self, localpart_suffix: str) -> UserID:
        """The Matrix ID of a ghost: ``@{ghost_prefix}{suffix}:{server_name}``."""
        return UserID(f"@{self.ghost_prefix}{localpart_suffix}:{self.server_name}")

    async def emit(self, event: RemoteMessage) -> None:
        """Hand a remote event to the core. It is stored durably before this returns; the core
        then posts it in its portal, in order per chat, through the sender's ghost, retrying
        with backoff. Emitting the same (chat_id, message_id) again is harmless."""
        await self.remote.emit(self.name, event)

    async def link_portal(self, chat_id: str, room_id: RoomID) -> None:
        """Make ``room_id`` the portal of the remote chat ``chat_id`` (plumbing)."""
        await self.remote.link_portal(self.name, chat_id, room_id)


@runtime_checkable
class NetworkConnector(Protocol):
    """Required of every connector."""

    name: str

    async def start(self, ctx: BridgeContext) -> None:
        """Called once, after the database is ready and the appservice is answering.

        Connect to the remote network here. Must not block for long: start background tasks.
        """

    async def stop(self) -> None:
        """Called once at shutdown. Close connections; must not raise."""

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        """Called for each room event from the homeserver, in order per room, after it is stored.

        May be called again for the same event after a crash (at-least-once): make effects
        idempotent (e.g. derive Matrix transaction IDs from ``event.event_id``). Raising makes
        the core retry with backoff, then mark the event failed. Events sent by the bridge's
        own users (its bot and ghosts) are not passed here.
        """


class SessionKind(enum.Enum):
    """Whose remote identity a session is."""

    BOT = "bot"
    """The network's bridge bot: relays everyone (``<name> text``)."""
    VIRTUAL = "virtual"
    """An identity the bridge holds on the network for one Matrix user, without their credentials."""
    PUPPET = "puppet"
    """A Matrix user's own remote account, logged in through the bridge."""


@dataclass(frozen=True)
class OutgoingMessage:
    """A Matrix message on its way to the remote network, as the core routed it."""

    chat_id: str
    text: str
    """Plain text; for the relay, already formatted with the relay template (``<alice> hi``)."""
    html: str | None
    msgtype: str
    """m.text, m.notice or m.emote."""
    event_id: EventID
    """The Matrix event: a stable key should the network support idempotent sends."""
    sender: UserID
    sender_name: str
    reply_to: str | None = None
    """The remote message ID this one replies to, when the Matrix message was a reply."""


@runtime_checkable
class RemoteSession(Protocol):
    """One remote identity. Sending may raise: the core retries with backoff, then tells the room."""

    kind: SessionKind

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send to ``message.chat_id``; return the remote message ID if the network gives one.

        The core records it, so the echo of this message from the network is not bridged back,
        and later replies, edits and redactions can find it. Must not return before the network
        accepted the message (as far as it can tell).
        """


@runtime_checkable
class RelayProvider(Protocol):
    async def relay_session(self) -> RemoteSession | None:
        """The network's bot session, or None while it is not connected."""


@runtime_checkable
class VirtualUserProvider(Protocol):
    virtual_users: bool
    """True while virtual-user mode is on (usually a setting of the connector)."""

    async def virtual_session(self, user_id: UserID, display_name: str) -> RemoteSession:
        """The virtual identity of ``user_id`` on the network, created on first use.

        The connector closes identities idle for a while (its own setting) and recreates them
        here when the user speaks again."""


@runtime_checkable
class PuppetProvider(Protocol):
    def puppet_session(self, user_id: UserID) -> RemoteSession | None:
        """``user_id``'s own logged-in, connected session, if any."""


class ConfiguredConnector(Protocol):
    """A connector whose config section has a typed model of its own.

    Declare ``Settings`` (a pydantic model) on the class; the core validates the section with it
    before :meth:`NetworkConnector.start` and hands the instance over as ``ctx.settings``. A bad
    value stops the bridge with an error naming ``connectors.<name>.<key>`` and the fix; keys the
    model does not know are warned about (and kept, as everywhere in the config).
    """

    Settings: type[BaseModel]


@runtime_checkable
class EphemeralHandler(Protocol):
    async def handle_ephemeral(self, event: EphemeralEvent) -> None:
        """Typing, receipts, presence (when ``receive_ephemeral`` is on). Same rules as events."""


@runtime_checkable
class UserQueryHandler(Protocol):
    async def query_user(self, user_id: UserID) -> bool:
        """The homeserver asks whether ``user_id`` (in our namespace) exists.

        Return True to claim it; the core then registers the user before answering 200.
        Must not block for more than a few seconds (the homeserver is waiting).
        """


@runtime_checkable
class AliasQueryHandler(Protocol):
    async def query_alias(self, alias: RoomAlias) -> bool:
        """The homeserver asks whether ``alias`` (in our namespace) exists.

        Return True only after creating the room and giving it the alias (spec: the room must
        exist before the 200).
        """


@runtime_checkable
class ThirdPartyHandler(Protocol):
    """Third-party network lookups (``/thirdparty/*``) for the protocols the connector provides."""

    protocol_ids: tuple[str, ...]

    async def thirdparty_protocol(self, protocol: str) -> dict[str, Any] | None:
        """Protocol metadata (user_fields, location_fields, icon, field_types, instances)."""

    async def thirdparty_locations(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        """Portals matching the fields: ``[{alias, protocol, fields}]``."""

    async def thirdparty_users(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        """Ghosts matching the fields: ``[{userid, protocol, fields}]``."""

    async def thirdparty_location_by_alias(self, alias: RoomAlias) -> list[dict[str, Any]]:
        """Reverse lookup of a Matrix alias."""

    async def thirdparty_user_by_id(self, user_id: UserID) -> list[dict[str, Any]]:
        """Reverse lookup of a Matrix user ID."""


__all__ = [
    "AliasQueryHandler",
    "BridgeContext",
    "ConfiguredConnector",
    "EphemeralHandler",
    "MatrixAPI",
    "NetworkConnector",
    "OutgoingMessage",
    "PuppetProvider",
    "RelayProvider",
    "RemoteSession",
    "RemoteSink",
    "SessionKind",
    "ThirdPartyHandler",
    "UserQueryHandler",
    "VirtualUserProvider",
]
