"""Small adapters the composition root (``bridgekit/app.py``) plugs between the core's parts and
the connectors: what a management command or a portal change needs from the others, and the
secrets and permissions read from the config."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import httpx

from bridgekit.config import BridgeConfig
from bridgekit.connector import LoginFlow, LoginProvider, NetworkConnector, PortalListener, PortalResolver
from bridgekit.core.double_puppet import read_double_puppet_token
from bridgekit.core.permissions import Permissions, default_rules
from bridgekit.core.remote_delivery import RemoteDelivery
from bridgekit.credentials import CredentialCipher, key_bytes, load_key
from bridgekit.errors import ConfigError, MatrixError
from bridgekit.ids import ChatID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store import MatrixStateStore
from bridgekit.store.portals import PortalStore
from bridgekit.telemetry import BridgeMetrics

log = logging.getLogger(__name__)


def relay_switch(portals: PortalStore) -> Callable[[RoomID, bool], Awaitable[bool]]:
    """The ``relay on|off`` command's effect: False when the room is no portal."""
    async def set_relay(room_id: RoomID, enabled: bool) -> bool:
        portal = await portals.portal_for_room(room_id)
        if portal is None:
            return False
        await portals.set_relay(portal.id, enabled)
        return True

    return set_relay


def room_member_check(matrix: MatrixClient) -> Callable[[RoomID, UserID], Awaitable[bool]]:
    """Whether a user is joined to a room, as the room's state reads to the bot (False when the
    bot cannot read it)."""
    async def is_joined(room_id: RoomID, user_id: UserID) -> bool:
        try:
            member = await matrix.bot.get_state(room_id, "m.room.member", user_id)
        except MatrixError:
            return False
        return member.get("membership") == "join"

    return is_joined


def permissions(config: BridgeConfig) -> Permissions:
    rules = config.permissions or default_rules(config.homeserver.server_name)
    try:
        return Permissions.from_mapping(rules)
    except ValueError as error:
        raise ConfigError(f"permissions: {error}") from None


def command_linker(
    connectors: Mapping[str, NetworkConnector], remote: RemoteDelivery
) -> Callable[[str, str, RoomID], Awaitable[str | None]]:
    """``link`` takes a chat as a user types it: a connector that resolves names (PortalResolver)
    turns it into its canonical ID, or says there is no such chat."""
    async def link(network: str, chat: str, room_id: RoomID) -> str | None:
        connector = connectors.get(network)
        if connector is not None and isinstance(connector, PortalResolver):
            info = await connector.portal_for_alias(chat)
            if info is None:
                return None
            chat = info.chat_id
        await remote.link_portal(network, chat, room_id)
        return chat

    return link


def portal_listener(
    connectors: Mapping[str, NetworkConnector],
) -> Callable[[str, str, RoomID | None], Awaitable[None]]:
    """Tells a :class:`PortalListener` connector that one of its portals was linked or unlinked."""
    async def changed(network: str, chat_id: str, room_id: RoomID | None) -> None:
        connector = connectors.get(network)
        if connector is None or not isinstance(connector, PortalListener):
            return
        if room_id is None:
            await connector.portal_unlinked(ChatID(chat_id))
        else:
            await connector.portal_linked(ChatID(chat_id), room_id)

    return changed


def login_flows(connectors: Mapping[str, NetworkConnector]) -> Callable[[str], list[LoginFlow]]:
    def flows(network: str) -> list[LoginFlow]:
        connector = connectors.get(network)
        if connector is None or not isinstance(connector, LoginProvider):
            return []
        return list(connector.login_flows)

    return flows


def credential_cipher(config: BridgeConfig) -> CredentialCipher | None:
    """The cipher of stored logins; None (logins refused, with the fix) when no key is set. A key
    that is set but unusable stops the bridge now, not at the first login."""
    try:
        key = load_key(configured=config.secrets.credentials_key, environ=os.environ)
    except ConfigError as error:
        if "no credentials key" not in str(error):
            raise
        return None
    return CredentialCipher(key, config.secrets.previous_credentials_keys)


def warn_if_logins_are_off(config: BridgeConfig, connectors: Sequence[NetworkConnector]) -> None:
    """Said only where a network offers logins: without a credentials key they are refused."""
    if not any(isinstance(connector, LoginProvider) for connector in connectors):
        return
    try:
        load_key(configured=config.secrets.credentials_key, environ=os.environ)
    except ConfigError as error:
        log.warning("puppet logins are off: %s", error)


def credentials_key_bytes(config: BridgeConfig) -> list[bytes]:
    """The credentials key's bytes, then the previous keys' (none when no key is set), from
    which connectors' signing keys are derived."""
    try:
        key = load_key(configured=config.secrets.credentials_key, environ=os.environ)
    except ConfigError:
        return []  # no key (a malformed one stopped the bridge already, in credential_cipher)
    return [key_bytes(k) for k in (key, *config.secrets.previous_credentials_keys)]


def double_puppet_client(
    config: BridgeConfig, http: httpx.AsyncClient, memory: MatrixStateStore, metrics: BridgeMetrics | None = None,
) -> MatrixClient | None:
    path = config.double_puppet.registration
    if not path:
        return None
    try:
        token = read_double_puppet_token(Path(path))
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"double_puppet.registration: {error}") from None
    return MatrixClient(
        http, homeserver_url=config.homeserver.url, as_token=token,
        bot_user_id=UserID(config.bot_user_id), memory=memory, metrics=metrics,
    )


__all__ = [
    "command_linker",
    "credential_cipher",
    "credentials_key_bytes",
    "double_puppet_client",
    "login_flows",
    "permissions",
    "portal_listener",
    "relay_switch",
    "room_member_check",
    "warn_if_logins_are_off",
]
