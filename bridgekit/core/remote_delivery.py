"""Remote -> Matrix: what connectors emit is stored durably, then posted in order per portal.

``emit`` returns once the event is committed to the outbox, so a crash after it loses nothing:
pending sends are replayed at start-up. Each portal has one ordered worker (the same dispatcher as
the inbox), which hands each stored event to its handler (``core/remote_to_matrix.py``); a send
goes out through the sender's ghost, registered, named and joined as needed, with a Matrix
transaction ID derived from the event's idempotency key so a resend after a crash lands once. A
send that fails every attempt is reported in the room by the bridge bot and counted.

``emit(..., wait=True)`` stores the event the same way, then waits for its portal's worker to post
it and answers with the Matrix event ID (``core/delivery_waiters.py``); emitted again after it was
posted, the stored ID answers at once.

This is the core's :class:`~bridgekit.connector.RemoteSink`: portal rooms (link, open_dm, alias
portals, unlink, upgrades) are ``core/portal_rooms.py``'s, reached through it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bridgekit.connector import PortalInfo, SessionState
from bridgekit.core.delivery_waiters import DeliveryWaiters
from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.ghost_profiles import ProfileApplier
from bridgekit.core.portal_rooms import PortalChange, PortalRooms
from bridgekit.core.remote_senders import DOUBLE_PUPPET_MARKER, OwnerLookup, RemoteSenders
from bridgekit.core.remote_to_matrix import RemoteToMatrix
from bridgekit.errors import DeliveryFailed
from bridgekit.events import (
    REMOTE_EVENT_KINDS,
    RemoteChatInfo,
    RemoteDelete,
    RemoteEdit,
    RemoteEvent,
    RemoteMember,
    RemoteMessage,
    RemotePower,
    RemoteReaction,
    RemoteReceipt,
    RemoteTyping,
    remote_event_to_json,
)
from bridgekit.guarded_http import GuardedHTTP
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.outbox import OutboxEntry
from bridgekit.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

SessionReporter = Callable[[str, UserID | None, SessionState, str | None], Awaitable[None]]


def idempotency_key(network: str, chat_id: str, message_id: str) -> str:
    """Stable for a remote message: JSON keeps the three parts apart whatever they contain."""
    return json.dumps(["msg", network, chat_id, message_id], separators=(",", ":"), ensure_ascii=False)


# The parts of each event type's idempotency key. Stored keys outlive a release (the same event
# emitted after an upgrade must still be found), so these never change.
def _message_key(network: str, e: RemoteMessage) -> list[str]:
    return ["msg", network, e.chat_id, e.message_id]


def _edit_key(network: str, e: RemoteEdit) -> list[str]:
    return ["edit", network, e.chat_id, e.message_id, e.edit_id]


def _delete_key(network: str, e: RemoteDelete) -> list[str]:
    return ["delete", network, e.chat_id, e.message_id]


def _typing_key(network: str, e: RemoteTyping) -> list[str]:
    # Every typing change is news (a user types, stops, types again): never deduplicated.
    return ["typing", network, e.chat_id, e.sender_id, str(e.typing), str(time.time_ns())]


def _receipt_key(network: str, e: RemoteReceipt) -> list[str]:
    return ["receipt", network, e.chat_id, e.sender_id, e.message_id]


def _member_key(network: str, e: RemoteMember) -> list[str]:
    return ["member", network, e.chat_id, e.sender_id, e.membership, e.change_id]


def _chat_info_key(network: str, e: RemoteChatInfo) -> list[str]:
    return ["chat-info", network, e.chat_id, str(e.name), str(e.topic), e.change_id]


def _power_key(network: str, e: RemotePower) -> list[str]:
    return ["power", network, e.chat_id, e.sender_id, str(e.level), e.change_id]


def _reaction_key(network: str, e: RemoteReaction) -> list[str]:
    return ["reaction", network, e.chat_id, e.message_id, e.sender_id, e.emoji, "remove" if e.removed else "add",
            e.change_id]


_KEY_PARTS: Mapping[type[RemoteEvent], Callable[[str, Any], list[str]]] = {
    RemoteMessage: _message_key, RemoteEdit: _edit_key, RemoteDelete: _delete_key, RemoteTyping: _typing_key,
    RemoteReceipt: _receipt_key, RemoteMember: _member_key, RemoteChatInfo: _chat_info_key, RemotePower: _power_key,
    RemoteReaction: _reaction_key,
}


def event_key(network: str, event: RemoteEvent) -> str:
    """The idempotency key of any remote event (a message's is :func:`idempotency_key`)."""
    return json.dumps(_KEY_PARTS[type(event)](network, event), separators=(",", ":"), ensure_ascii=False)


class RemoteDelivery:
    """The core's :class:`~bridgekit.connector.RemoteSink`."""

    def __init__(
        self,
        stores: BridgeStores,
        matrix: MatrixClient,
        *,
        server_name: str,
        ghost_prefixes: Mapping[str, str],
        max_attempts: int = 5,
        owner_of: OwnerLookup | None = None,
        double_puppet: MatrixClient | None = None,
        report_session: SessionReporter | None = None,
        in_flight: SendsInFlight | None = None,
        is_puppet_owner: Callable[[UserID], bool] | None = None,
        fetcher: GuardedHTTP | None = None,
        on_portal_change: PortalChange | None = None,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._stores = stores
        self._matrix = matrix
        self._report_session = report_session
        self._networks = frozenset(ghost_prefixes)
        self._in_flight = in_flight or SendsInFlight()
        senders = RemoteSenders(
            matrix, ProfileApplier(stores.ghosts, fetcher), server_name=server_name, ghost_prefixes=ghost_prefixes,
            owner_of=owner_of, double_puppet=double_puppet, is_puppet_owner=is_puppet_owner,
        )
        self.rooms = PortalRooms(stores.portals, matrix, senders, server_name=server_name,
                                 on_portal_change=on_portal_change)
        self._to_matrix = RemoteToMatrix(stores, senders, self.rooms, self._in_flight)
        self.ghost_ids = senders.ghost_ids
        """The ghosts' Matrix IDs (kept ones loaded by :meth:`start`), for the connectors' contexts."""
        self._dispatcher = RoomDispatcher(
            self._send, on_done=self._on_sent, on_failure=self._on_failure, max_attempts=max_attempts
        )
        self._waiters = DeliveryWaiters()
        self.sent = 0
        self.failed = 0

    @property
    def dispatcher(self) -> RoomDispatcher:
        return self._dispatcher

    async def start(self) -> int:
        """Queue the sends the previous run did not finish; returns how many."""
        await self.ghost_ids.load(self._stores.ghosts)  # before any ghost is named
        await self._stores.messages.load_recent_sends()
        replayed = 0
        async for entry in self._stores.outbox.pending():
            self._queue(entry)
            replayed += 1
        if replayed:
            log.info("resending %d remote messages the previous run did not finish", replayed)
        return replayed

    async def stop(self, grace_seconds: float = 10.0) -> None:
        await self._dispatcher.stop(grace_seconds)
        self._waiters.close()  # after the grace: sends that landed meanwhile answered their waiters
        await self._stores.flush()

    @property
    def waiting(self) -> int:
        """Emits waiting for their event to be posted."""
        return self._waiters.count

    async def emit(self, network: str, event: RemoteEvent, *, wait: bool = False) -> EventID | None:
        emitted = time.monotonic()
        if network not in self._networks:
            raise ValueError(f"no connector named {network!r} is running")
        if type(event) not in REMOTE_EVENT_KINDS:
            raise TypeError(f"emit takes one of the Remote* events of bridgekit.events, not {event!r}")
        if isinstance(event, RemoteMessage):
            portal = await self._stores.portals.portal(network, event.chat_id)
            if portal is not None and self._stores.messages.sent_by_us(portal.id, event.message_id):
                # Our own send coming back from the network (an echo): its Matrix event is the original.
                return await self._original(portal.id, event.message_id) if wait else None
        key = event_key(network, event)
        payload = {"network": network, **remote_event_to_json(event)}
        if not wait:
            await self._store_and_queue(network, event.chat_id, key, payload, emitted)
            return None
        # Registered before the send is stored or looked up, so a send landing in between is not missed.
        future = self._waiters.register(key)
        try:
            if not await self._store_and_queue(network, event.chat_id, key, payload, emitted):
                await self._answer_from_store(network, key, event)
        except BaseException:
            self._waiters.discard(key, future)
            raise
        return await self._waiters.wait(key, future)

    async def _store_and_queue(
        self, network: str, chat_id: str, key: str, payload: dict[str, object], emitted: float
    ) -> bool:
        """Store and queue a send; False when the same event was emitted before (stored once)."""
        entry = await self._stores.outbox.add(network, chat_id, key, payload)
        if entry is None:
            return False
        self._queue(entry, emitted)
        return True

    async def _answer_from_store(self, network: str, key: str, event: RemoteEvent) -> None:
        """An event emitted again: answer its waiters now if its send is over (else its worker will)."""
        outcome = await self._stores.outbox.outcome(key)
        if outcome is None or outcome.state == "pending":
            return
        if outcome.state == "failed":
            self._waiters.fail(key, _failed(outcome.last_error or "unknown error"))
            return
        event_id = EventID(outcome.event_id) if outcome.event_id else None
        if event_id is None and isinstance(event, RemoteMessage):
            # Sent before the outbox kept event IDs: the message map has it.
            portal = await self._stores.portals.portal(network, event.chat_id)
            event_id = await self._original(portal.id, event.message_id) if portal is not None else None
        self._waiters.resolve(key, event_id)

    async def _original(self, portal_id: int, message_id: str) -> EventID | None:
        event_id = await self._stores.messages.event_for(portal_id, message_id)
        return EventID(event_id) if event_id else None

    async def report_session(
        self, network: str, owner: UserID | None, state: SessionState, detail: str | None
    ) -> None:
        if self._report_session is not None:
            await self._report_session(network, owner, state, detail)

    # ---- portal rooms (core/portal_rooms.py), as the RemoteSink and the management room ask --

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID, *, relay: bool | None = None) -> None:
        await self.rooms.link_portal(network, chat_id, room_id, relay=relay)

    async def keep_ghost_id(self, network: str, sender_id: str, user_id: UserID) -> UserID:
        return await self.ghost_ids.keep(self._stores.ghosts, network, sender_id, user_id)

    async def link_feed(self, network: str, chat_id: str, room_id: RoomID) -> None:
        await self.rooms.link_feed(network, chat_id, room_id)

    async def portal_chats(self, network: str) -> list[str]:
        return await self.rooms.portal_chats(network)

    async def chat_for_room(self, network: str, room_id: RoomID) -> str | None:
        return await self.rooms.chat_for_room(network, room_id)

    async def room_for_chat(self, network: str, chat_id: str) -> RoomID | None:
        return await self.rooms.room_for_chat(network, chat_id)

    async def open_dm(
        self, network: str, chat_id: str, sender_id: str, sender_name: str | None, user_id: UserID
    ) -> RoomID:
        return await self.rooms.open_dm(network, chat_id, sender_id, sender_name, user_id)

    async def create_alias_portal(self, network: str, alias_localpart: str, info: PortalInfo) -> RoomID:
        return await self.rooms.create_alias_portal(network, alias_localpart, info)

    async def unlink_portal(self, room_id: RoomID) -> str | None:
        return await self.rooms.unlink_portal(room_id)

    async def follow_upgrade(self, old_room: RoomID, new_room: RoomID) -> bool:
        return await self.rooms.follow_upgrade(old_room, new_room)

    # ---- the outbox's workers -----------------------------------------------------------------

    def _queue(self, entry: OutboxEntry, emitted: float = 0.0) -> None:
        self._dispatcher.enqueue([
            WorkItem(entry.id, "remote_message", f"portal:{entry.portal_id}", entry, received_at=emitted)
        ])

    async def _send(self, item: WorkItem) -> None:
        entry: OutboxEntry = item.event
        event_id = await self._to_matrix.post(entry)
        network = str(entry.payload["network"])
        if event_id is not None and item.received_at and self._metrics is not None:
            # Only what became a Matrix event: typing and receipts would flatter the figures.
            self._metrics.remote_to_matrix_seconds.labels(network).observe(time.monotonic() - item.received_at)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s posted as %s", entry.idempotency_key, event_id, extra={
                "remote_id": entry.payload.get("message_id"), "chat_id": entry.payload.get("chat_id"),
                "network": network, "event_id": event_id, "key": entry.idempotency_key})
        self._waiters.resolve(entry.idempotency_key, event_id)

    def _on_sent(self, _item: WorkItem) -> None:
        self.sent += 1

    async def _on_failure(self, item: WorkItem, error: BaseException, final: bool) -> None:
        entry: OutboxEntry = item.event
        if self._metrics is not None:
            self._metrics.failure("to_matrix", error, final=final)
        try:
            await self._stores.outbox.record_attempt(entry.id, repr(error), final=final)
        except Exception:
            log.exception("could not record the failed send of outbox row %d", entry.id)
        if not final:
            return
        self._waiters.fail(entry.idempotency_key, _failed(repr(error), error))
        self.failed += 1
        log.error("giving up on remote message %s after %d attempts: %r", entry.idempotency_key, item.attempts, error,
                  extra=item.log_ids())
        await self._tell_room(entry, error)

    async def _tell_room(self, entry: OutboxEntry, error: BaseException) -> None:
        """Say in the portal that a message was lost, so nobody waits for it in silence."""
        try:
            portal = await self._stores.portals.portal_by_id(entry.portal_id)
            if portal.posts_into is None:
                return
            sender = entry.payload.get("sender_name") or entry.payload.get("sender_id")
            await self._matrix.bot.send_text(
                RoomID(portal.posts_into),
                f"A message from {sender} could not be delivered to Matrix ({type(error).__name__}).",
                msgtype="m.notice", txn_id=f"failed:{entry.idempotency_key}",
            )
        except Exception:
            log.exception("could not report the failed send of outbox row %d in its room", entry.id)


def _failed(reason: str, cause: BaseException | None = None) -> DeliveryFailed:
    failure = DeliveryFailed(f"the event could not be posted on Matrix: {reason}")
    failure.__cause__ = cause
    return failure


__all__ = ["DOUBLE_PUPPET_MARKER", "RemoteDelivery", "event_key", "idempotency_key"]
