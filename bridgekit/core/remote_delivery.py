"""Remote -> Matrix: what connectors emit is stored durably, then posted in order per portal.

``emit`` returns once the event is committed to the outbox, so a crash after it loses nothing:
pending sends are replayed at start-up. Each portal has one ordered worker (the same dispatcher as
the inbox); a send goes out through the sender's ghost, registered, named and joined as needed,
with a Matrix transaction ID derived from (network, chat, message) so a resend after a crash lands
once. A send that fails every attempt is reported in the room by the bridge bot and counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict

from bridgekit.core.bridge_info import BridgeSection, announce_bridge, bridge_info_content, bridge_info_state_key
from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.errors import MatrixError
from bridgekit.events import RemoteMessage
from bridgekit.ids import EventID, RoomID
from bridgekit.matrix import MatrixClient
from bridgekit.naming import ghost_user_id
from bridgekit.store.outbox import OutboxEntry, OutboxStore, PortalRow

log = logging.getLogger(__name__)

BRIDGE_SOFTWARE = "bridgekit"
"""The software part of m.bridge state keys (``bridgekit://<network>/<chat>``)."""


def idempotency_key(network: str, chat_id: str, message_id: str) -> str:
    """Stable for a remote message: JSON keeps the three parts apart whatever they contain."""
    return json.dumps(["msg", network, chat_id, message_id], separators=(",", ":"), ensure_ascii=False)


class RemoteDelivery:
    """The core's :class:`~bridgekit.connector.RemoteSink`."""

    def __init__(
        self,
        store: OutboxStore,
        matrix: MatrixClient,
        *,
        server_name: str,
        ghost_prefixes: Mapping[str, str],
        max_attempts: int = 5,
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._server_name = server_name
        self._ghost_prefixes = dict(ghost_prefixes)
        self._dispatcher = RoomDispatcher(
            self._send, on_done=self._on_sent, on_failure=self._on_failure, max_attempts=max_attempts
        )
        self.sent = 0
        self.failed = 0

    @property
    def dispatcher(self) -> RoomDispatcher:
        return self._dispatcher

    async def start(self) -> int:
        """Queue the sends the previous run did not finish; returns how many."""
        replayed = 0
        async for entry in self._store.pending():
            self._queue(entry)
            replayed += 1
        if replayed:
            log.info("resending %d remote messages the previous run did not finish", replayed)
        return replayed

    async def stop(self, grace_seconds: float = 10.0) -> None:
        await self._dispatcher.stop(grace_seconds)

    async def emit(self, network: str, event: RemoteMessage) -> None:
        if network not in self._ghost_prefixes:
            raise ValueError(f"no connector named {network!r} is running")
        portal = await self._store.portal(network, event.chat_id)
        if portal is not None and await self._store.event_for(portal.id, event.message_id) is not None:
            return  # our own send (or one already posted) coming back from the network: an echo
        key = idempotency_key(network, event.chat_id, event.message_id)
        payload = {"network": network, "kind": "message", **asdict(event)}
        entry = await self._store.add(network, event.chat_id, key, payload)
        if entry is not None:  # None: the same message was emitted before
            self._queue(entry)

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID) -> None:
        portal = await self._store.link_portal(network, chat_id, room_id)
        await self._announce(portal, room_id)

    async def follow_upgrade(self, old_room: RoomID, new_room: RoomID) -> bool:
        """A portal room was upgraded (``m.room.tombstone``): move the portal to its successor.

        The bot joins the new room (it may need an invite there, like anyone), the portal points
        at it from now on, and the new room gets the bridge info. False when ``old_room`` is no
        portal, or the bot could not join (the old room is then told why)."""
        portal = await self._store.portal_for_room(old_room)
        if portal is None:
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
        await self._store.set_portal_room(portal.id, new_room)
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

    def _queue(self, entry: OutboxEntry) -> None:
        self._dispatcher.enqueue([WorkItem(entry.id, "remote_message", f"portal:{entry.portal_id}", entry)])

    async def _send(self, item: WorkItem) -> None:
        entry: OutboxEntry = item.event
        payload = entry.payload
        network = str(payload["network"])
        message = RemoteMessage(**{key: payload[key] for key in _MESSAGE_FIELDS if key in payload})
        portal = await self._store.portal_by_id(entry.portal_id)
        room_id = RoomID(portal.room_id) if portal.room_id else await self._create_room(portal)
        ghost = self._matrix.intent(
            ghost_user_id(self._ghost_prefixes[network], network, message.sender_id, self._server_name)
        )
        await ghost.ensure_registered()
        name = message.sender_name or message.sender_id
        if await self._store.ghost_name(network, message.sender_id) != name:
            await ghost.set_displayname(name)
            await self._store.remember_ghost_name(network, message.sender_id, ghost.user_id, name)
        await ghost.ensure_joined(room_id)
        reply_to = await self._store.event_for(portal.id, message.reply_to) if message.reply_to else None
        event_id = await ghost.send_text(
            room_id, message.text, html=message.html, msgtype=message.msgtype,
            reply_to=EventID(reply_to) if reply_to else None,
            txn_id=entry.idempotency_key, ts=message.timestamp_ms,
        )
        await self._store.mark_sent(
            entry, event_id=event_id, remote_id=message.message_id, sender_user_id=ghost.user_id,
            sender_remote_id=message.sender_id, ts=message.timestamp_ms or 0, reply_to_remote_id=message.reply_to,
        )

    async def _create_room(self, portal: PortalRow) -> RoomID:
        # A chat that nobody linked yet gets a room of its own, made by the bot; who is invited
        # to it is the connector's business (it knows who asked).
        room_id = await self._matrix.bot.create_room(name=portal.name or portal.remote_id, preset="private_chat")
        await self._store.set_portal_room(portal.id, room_id)
        await self._announce(portal, room_id)
        return room_id

    def _on_sent(self, _item: WorkItem) -> None:
        self.sent += 1

    async def _on_failure(self, item: WorkItem, error: BaseException, final: bool) -> None:
        entry: OutboxEntry = item.event
        try:
            await self._store.record_attempt(entry.id, repr(error), final=final)
        except Exception:
            log.exception("could not record the failed send of outbox row %d", entry.id)
        if not final:
            return
        self.failed += 1
        log.error("giving up on remote message %s after %d attempts: %r", entry.idempotency_key, item.attempts, error)
        await self._tell_room(entry, error)

    async def _tell_room(self, entry: OutboxEntry, error: BaseException) -> None:
        """Say in the portal that a message was lost, so nobody waits for it in silence."""
        try:
            portal = await self._store.portal_by_id(entry.portal_id)
            if portal.room_id is None:
                return
            sender = entry.payload.get("sender_name") or entry.payload.get("sender_id")
            await self._matrix.bot.send_text(
                RoomID(portal.room_id),
                f"A message from {sender} could not be delivered to Matrix ({type(error).__name__}).",
                msgtype="m.notice", txn_id=f"failed:{entry.idempotency_key}",
            )
        except Exception:
            log.exception("could not report the failed send of outbox row %d in its room", entry.id)


_MESSAGE_FIELDS = tuple(RemoteMessage.__dataclass_fields__)

__all__ = ["RemoteDelivery", "idempotency_key"]
