"""Portal rooms on Matrix: made, linked, unlinked and moved, each announced with the bridge info.

Portals come from ``link`` (plumbing), from alias queries (the room exists with its alias before
the homeserver gets its 200), from a private chat a remote user opens (``open_dm``), or from the
first remote event of a chat nobody linked. Whatever changes a portal tells the connector
(``on_portal_change``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import quote

from bridgekit.connector import PortalInfo
from bridgekit.core.bridge_info import BridgeSection, announce_bridge, bridge_info_content, bridge_info_state_key
from bridgekit.core.remote_senders import RemoteSenders
from bridgekit.errors import MatrixError, MatrixRequestError
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store.portals import PortalRow, PortalStore

log = logging.getLogger(__name__)

BRIDGE_SOFTWARE = "bridgekit"
"""The software part of m.bridge state keys (``bridgekit://<network>/<chat>``)."""

PortalChange = Callable[[str, str, RoomID | None], Awaitable[None]]
"""(network, chat, room or None when unlinked): tell the connector."""


class PortalRooms:
    def __init__(
        self,
        portals: PortalStore,
        matrix: MatrixClient,
        senders: RemoteSenders,
        *,
        server_name: str,
        on_portal_change: PortalChange | None = None,
    ) -> None:
        self._portals = portals
        self._matrix = matrix
        self._senders = senders
        self._server_name = server_name
        self._on_portal_change = on_portal_change
        self._alias_portals = asyncio.Lock()
        """Alias queries make portals one at a time: two queries for one chat (two users joining
        at once) must not both create its room (the second would fail, M_ROOM_IN_USE)."""

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID, *, relay: bool | None = None) -> None:
        portal = await self._portals.link_portal(network, chat_id, room_id)
        if relay is not None:
            await self._portals.set_relay(portal.id, relay)
        await self._announce(portal, room_id)
        await self._changed(network, chat_id, room_id)

    async def link_feed(self, network: str, chat_id: str, room_id: RoomID) -> None:
        """Post the chat's events into ``room_id`` without making the room its portal (no bridge
        info either: the room is not bridged to the chat, the chat only posts there)."""
        before = await self._portals.portal(network, chat_id)
        await self._portals.link_feed(network, chat_id, room_id)
        if before is not None and before.room_id is not None:
            await self._changed(network, chat_id, None)  # it was a portal: it is none now

    async def portal_chats(self, network: str) -> list[str]:
        return await self._portals.portal_chats(network)

    async def chat_for_room(self, network: str, room_id: RoomID) -> str | None:
        portal = await self._portals.portal_for_room(room_id)
        return portal.remote_id if portal is not None and portal.network == network else None

    async def room_for_chat(self, network: str, chat_id: str) -> RoomID | None:
        portal = await self._portals.portal(network, chat_id)
        return RoomID(portal.room_id) if portal is not None and portal.room_id is not None else None

    async def open_dm(
        self, network: str, chat_id: str, sender_id: str, sender_name: str | None, user_id: UserID
    ) -> RoomID:
        existing = await self._portals.portal(network, chat_id)
        if existing is not None and existing.room_id is not None:
            return RoomID(existing.room_id)
        ghost = await self._senders.profiled_ghost(network, sender_id, sender_name)
        room_id = await ghost.create_room(invitees=[user_id], is_direct=True, preset="trusted_private_chat")
        portal = await self._portals.link_portal(network, chat_id, room_id, origin="dm")
        await self._portals.set_relay(portal.id, False)  # a private chat is never relayed
        await self._changed(network, chat_id, room_id)
        return room_id

    async def create_alias_portal(self, network: str, alias_localpart: str, info: PortalInfo) -> RoomID:
        """The room of an alias query (spec: it exists, with the alias, before the 200)."""
        async with self._alias_portals:
            existing = await self._portals.portal(network, info.chat_id)
            if existing is None or existing.room_id is None:
                return await self._create_alias_room(network, alias_localpart, info)
        # The chat has a room already (linked, made for an earlier message or an earlier query):
        # point the alias at it rather than splitting the chat over two rooms.
        room_id = RoomID(existing.room_id)
        alias = f"#{alias_localpart}:{self._server_name}"
        try:
            await self._matrix.request_json(
                "PUT", f"/_matrix/client/v3/directory/room/{quote(alias, safe='')}", json={"room_id": room_id}
            )
        except MatrixRequestError as error:
            if error.status != HTTPStatus.CONFLICT:
                raise
            # The alias names a room already: asked again (the homeserver's cache, a retry, a
            # direct query). Only this appservice may set aliases in its exclusive namespace.
            log.debug("alias %s already set; the query is answered as found", alias)
        return room_id

    async def _create_alias_room(self, network: str, alias_localpart: str, info: PortalInfo) -> RoomID:
        room_id = await self._matrix.bot.create_room(
            alias_localpart=alias_localpart, name=info.name or info.chat_id, topic=info.topic, preset="public_chat",
        )
        portal = await self._portals.link_portal(network, info.chat_id, room_id, origin="alias")
        await self._announce(portal, room_id)
        await self._changed(network, info.chat_id, room_id)
        return room_id

    async def create_room(self, portal: PortalRow) -> RoomID:
        """A room for a chat that nobody linked yet, made by the bot; who is invited to it is the
        connector's business (it knows who asked)."""
        room_id = await self._matrix.bot.create_room(name=portal.name or portal.remote_id, preset="private_chat")
        await self._portals.set_portal_room(portal.id, room_id)
        await self._announce(portal, room_id)
        return room_id

    async def unlink_portal(self, room_id: RoomID) -> str | None:
        portal = await self._portals.unlink_room(room_id)
        if portal is None:
            return None
        key = bridge_info_state_key(BRIDGE_SOFTWARE, portal.network, None, portal.remote_id)
        try:  # clients stop showing the room as bridged
            await self._matrix.bot.send_state(room_id, "m.bridge", key, {})
            await self._matrix.bot.send_state(room_id, "uk.half-shot.bridge", key, {})
        except MatrixError as error:
            log.info("could not clear the bridge info of %s: %s", room_id, error)
        await self._changed(portal.network, portal.remote_id, None)
        return f"{portal.remote_id} on {portal.network}"

    async def follow_upgrade(self, old_room: RoomID, new_room: RoomID) -> bool:
        """A portal room was upgraded (``m.room.tombstone``): move the portal to its successor.

        The bot joins the new room (it may need an invite there, like anyone), the portal and the
        feeds posting into the room point at it from now on, and the new room gets the bridge
        info. False when ``old_room`` is no portal and has no feeds, or the bot could not join
        (the old room is then told why)."""
        portal = await self._portals.portal_for_room(old_room)
        feeds = await self._portals.feeds_into(old_room)
        if portal is None and not feeds:
            return False
        try:
            await self._matrix.bot.join(new_room)
        except MatrixError as error:
            await self._matrix.bot.send_text(
                old_room,
                f"This room was upgraded, but the bridge bot could not join the new room ({error.__class__.__name__}). "
                "Invite it there to keep the bridge running.",
                msgtype="m.notice", txn_id=f"upgrade-failed:{old_room}:{new_room}",
            )
            return False
        for feed in feeds:
            await self._portals.move_feed(feed.id, new_room)
        if portal is not None:
            await self._portals.set_portal_room(portal.id, new_room)
            await self._announce(portal, new_room)
            log.info("portal %s moved from %s to its upgraded room %s", portal.remote_id, old_room, new_room)
        return True

    async def _announce(self, portal: PortalRow, room_id: RoomID) -> None:
        """Tell clients the room is bridged (m.bridge); never fails the caller."""
        key = bridge_info_state_key(BRIDGE_SOFTWARE, portal.network, None, portal.remote_id)
        content = bridge_info_content(
            bridgebot=self._matrix.bot_user_id,
            protocol=BridgeSection(portal.network),
            channel=BridgeSection(portal.remote_id, displayname=portal.name),
        )
        try:
            result = await announce_bridge(self._matrix.bot, room_id, key, content)
        except Exception:
            log.exception("could not set the bridge info of %s", room_id)
            return
        log.info("bridge info of %s: %s", room_id, result.value)

    async def _changed(self, network: str, chat_id: str, room_id: RoomID | None) -> None:
        if self._on_portal_change is None:
            return
        try:
            await self._on_portal_change(network, chat_id, room_id)
        except Exception:
            log.exception("%s could not act on the portal change of %s", network, chat_id)


__all__ = ["BRIDGE_SOFTWARE", "PortalChange", "PortalRooms"]
