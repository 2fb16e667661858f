"""Remote -> Matrix: what connectors emit is stored durably, then posted in order per portal.

``emit`` returns once the event is committed to the outbox, so a crash after it loses nothing:
pending sends are replayed at start-up. Each portal has one ordered worker (the same dispatcher as
the inbox); a send goes out through the sender's ghost, registered, named and joined as needed,
with a Matrix transaction ID derived from (network, chat, message) so a resend after a crash lands
once. A send that fails every attempt is reported in the room by the bridge bot and counted.

``emit(..., wait=True)`` stores the event the same way, then waits for its portal's worker to post
it and answers with the Matrix event ID (``core/delivery_waiters.py``); emitted again after it was
posted, the stored ID answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from http import HTTPStatus
from urllib.parse import quote

import httpx

from bridgekit.connector import PortalInfo, SessionState
from bridgekit.core.bridge_info import BridgeSection, announce_bridge, bridge_info_content, bridge_info_state_key
from bridgekit.core.delivery_waiters import DeliveryWaiters
from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.core.echoes import SendsInFlight
from bridgekit.errors import DeliveryFailed, MatrixError, MatrixRequestError
from bridgekit.events import (
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
)
from bridgekit.guarded_http import GuardedHTTP, ResponseTooLarge
from bridgekit.ids import ContentURI, EventID, RoomID, UserID
from bridgekit.matrix import Intent, MatrixClient, edit_content, reaction_content
from bridgekit.naming import ghost_user_id
from bridgekit.ssrf import UnsafeURL
from bridgekit.store.outbox import MappedMessage, OutboxEntry, OutboxStore, PortalRow

log = logging.getLogger(__name__)

BRIDGE_SOFTWARE = "bridgekit"
"""The software part of m.bridge state keys (``bridgekit://<network>/<chat>``)."""


DOUBLE_PUPPET_MARKER = "net.bridgekit.double_puppet_source"
"""Content key of events the bridge sent as a Matrix user (double puppet): the value is the
network. The core drops such events when the homeserver shows them back to it, so a puppet's
message from another client is not bridged back to the network it came from."""

AVATAR_MAX_BYTES = 5 * 1024 * 1024

OwnerLookup = Callable[[str, str], UserID | None]
"""(network, remote user ID) -> the Matrix user logged in as that remote user (a puppet)."""

PortalChange = Callable[[str, str, RoomID | None], Awaitable[None]]
"""(network, chat, room or None when unlinked): tell the connector."""

SessionReporter = Callable[[str, UserID | None, SessionState, str | None], Awaitable[None]]


def idempotency_key(network: str, chat_id: str, message_id: str) -> str:
    """Stable for a remote message: JSON keeps the three parts apart whatever they contain."""
    return json.dumps(["msg", network, chat_id, message_id], separators=(",", ":"), ensure_ascii=False)


def event_key(network: str, event: RemoteEvent) -> str:
    """The idempotency key of any remote event (a message's is :func:`idempotency_key`)."""
    if isinstance(event, RemoteMessage):
        return idempotency_key(network, event.chat_id, event.message_id)
    if isinstance(event, RemoteEdit):
        parts = ["edit", network, event.chat_id, event.message_id, event.edit_id]
    elif isinstance(event, RemoteDelete):
        parts = ["delete", network, event.chat_id, event.message_id]
    elif isinstance(event, RemoteTyping):
        # Every typing change is news (a user types, stops, types again): never deduplicated.
        parts = ["typing", network, event.chat_id, event.sender_id, str(event.typing), str(time.time_ns())]
    elif isinstance(event, RemoteReceipt):
        parts = ["receipt", network, event.chat_id, event.sender_id, event.message_id]
    elif isinstance(event, RemoteMember):
        parts = ["member", network, event.chat_id, event.sender_id, event.membership, event.change_id]
    elif isinstance(event, RemoteChatInfo):
        parts = ["chat-info", network, event.chat_id, str(event.name), str(event.topic), event.change_id]
    elif isinstance(event, RemotePower):
        parts = ["power", network, event.chat_id, event.sender_id, str(event.level), event.change_id]
    else:
        parts = ["reaction", network, event.chat_id, event.message_id, event.sender_id, event.emoji,
                 "remove" if event.removed else "add", event.change_id]
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


_CLASSES: dict[str, type[RemoteEvent]] = {
    "message": RemoteMessage, "edit": RemoteEdit, "delete": RemoteDelete, "reaction": RemoteReaction,
    "typing": RemoteTyping, "receipt": RemoteReceipt, "member": RemoteMember, "chat-info": RemoteChatInfo,
    "power": RemotePower,
}
_KINDS: dict[type, str] = {cls: kind for kind, cls in _CLASSES.items()}


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
        owner_of: OwnerLookup | None = None,
        double_puppet: MatrixClient | None = None,
        report_session: SessionReporter | None = None,
        in_flight: SendsInFlight | None = None,
        is_puppet_owner: Callable[[UserID], bool] | None = None,
        fetcher: GuardedHTTP | None = None,
        on_portal_change: PortalChange | None = None,
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._owner_of = owner_of
        self._double_puppet = double_puppet
        self._report_session = report_session
        self._in_flight = in_flight or SendsInFlight()
        self._is_puppet_owner = is_puppet_owner
        self._fetcher = fetcher
        self._on_portal_change = on_portal_change
        self._server_name = server_name
        self._ghost_prefixes = dict(ghost_prefixes)
        self._dispatcher = RoomDispatcher(
            self._send, on_done=self._on_sent, on_failure=self._on_failure, max_attempts=max_attempts
        )
        self._alias_portals = asyncio.Lock()
        """Alias queries make portals one at a time: two queries for one chat (two users joining
        at once) must not both create its room (the second would fail, M_ROOM_IN_USE)."""
        self._waiters = DeliveryWaiters()
        self.sent = 0
        self.failed = 0

    @property
    def dispatcher(self) -> RoomDispatcher:
        return self._dispatcher

    async def start(self) -> int:
        """Queue the sends the previous run did not finish; returns how many."""
        await self._store.load_recent_sends()
        replayed = 0
        async for entry in self._store.pending():
            self._queue(entry)
            replayed += 1
        if replayed:
            log.info("resending %d remote messages the previous run did not finish", replayed)
        return replayed

    async def stop(self, grace_seconds: float = 10.0) -> None:
        await self._dispatcher.stop(grace_seconds)
        self._waiters.close()  # after the grace: sends that landed meanwhile answered their waiters
        await self._store.flush()

    @property
    def waiting(self) -> int:
        """Emits waiting for their event to be posted."""
        return self._waiters.count

    async def emit(self, network: str, event: RemoteEvent, *, wait: bool = False) -> EventID | None:
        if network not in self._ghost_prefixes:
            raise ValueError(f"no connector named {network!r} is running")
        kind = _KINDS.get(type(event))
        if kind is None:
            raise TypeError(f"emit takes one of the Remote* events of bridgekit.events, not {event!r}")
        if isinstance(event, RemoteMessage):
            portal = await self._store.portal(network, event.chat_id)
            if portal is not None and self._store.sent_by_us(portal.id, event.message_id):
                # Our own send coming back from the network (an echo): its Matrix event is the original.
                return await self._original(portal.id, event.message_id) if wait else None
        key = event_key(network, event)
        payload = {"network": network, "kind": kind, **asdict(event)}
        if not wait:
            await self._store_and_queue(network, event.chat_id, key, payload)
            return None
        # Registered before the send is stored or looked up, so a send landing in between is not missed.
        future = self._waiters.register(key)
        try:
            if not await self._store_and_queue(network, event.chat_id, key, payload):
                await self._answer_from_store(network, key, event)
        except BaseException:
            self._waiters.discard(key, future)
            raise
        return await self._waiters.wait(key, future)

    async def _store_and_queue(self, network: str, chat_id: str, key: str, payload: dict[str, object]) -> bool:
        """Store and queue a send; False when the same event was emitted before (stored once)."""
        entry = await self._store.add(network, chat_id, key, payload)
        if entry is None:
            return False
        self._queue(entry)
        return True

    async def _answer_from_store(self, network: str, key: str, event: RemoteEvent) -> None:
        """An event emitted again: answer its waiters now if its send is over (else its worker will)."""
        outcome = await self._store.outcome(key)
        if outcome is None or outcome.state == "pending":
            return
        if outcome.state == "failed":
            self._waiters.fail(key, _failed(outcome.last_error or "unknown error"))
            return
        event_id = EventID(outcome.event_id) if outcome.event_id else None
        if event_id is None and isinstance(event, RemoteMessage):
            # Sent before the outbox kept event IDs: the message map has it.
            portal = await self._store.portal(network, event.chat_id)
            event_id = await self._original(portal.id, event.message_id) if portal is not None else None
        self._waiters.resolve(key, event_id)

    async def _original(self, portal_id: int, message_id: str) -> EventID | None:
        event_id = await self._store.event_for(portal_id, message_id)
        return EventID(event_id) if event_id else None

    async def report_session(
        self, network: str, owner: UserID | None, state: SessionState, detail: str | None
    ) -> None:
        if self._report_session is not None:
            await self._report_session(network, owner, state, detail)

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID, *, relay: bool | None = None) -> None:
        portal = await self._store.link_portal(network, chat_id, room_id)
        if relay is not None:
            await self._store.set_relay(portal.id, relay)
        await self._announce(portal, room_id)
        await self._portal_changed(network, chat_id, room_id)

    async def portal_chats(self, network: str) -> list[str]:
        return await self._store.portal_chats(network)

    async def chat_for_room(self, network: str, room_id: RoomID) -> str | None:
        portal = await self._store.portal_for_room(room_id)
        return portal.remote_id if portal is not None and portal.network == network else None

    async def open_dm(
        self, network: str, chat_id: str, sender_id: str, sender_name: str | None, user_id: UserID
    ) -> RoomID:
        existing = await self._store.portal(network, chat_id)
        if existing is not None and existing.room_id is not None:
            return RoomID(existing.room_id)
        ghost = self._ghost(network, sender_id)
        await ghost.ensure_registered()
        if sender_name and await self._store.ghost_name(network, sender_id) != sender_name:
            await ghost.set_displayname(sender_name)
            await self._store.remember_ghost_name(network, sender_id, ghost.user_id, sender_name)
        room_id = await ghost.create_room(invitees=[user_id], is_direct=True, preset="trusted_private_chat")
        portal = await self._store.link_portal(network, chat_id, room_id, origin="dm")
        await self._store.set_relay(portal.id, False)  # a private chat is never relayed
        await self._portal_changed(network, chat_id, room_id)
        return room_id

    async def _portal_changed(self, network: str, chat_id: str, room_id: RoomID | None) -> None:
        if self._on_portal_change is None:
            return
        try:
            await self._on_portal_change(network, chat_id, room_id)
        except Exception:
            log.exception("%s could not act on the portal change of %s", network, chat_id)

    async def create_alias_portal(self, network: str, alias_localpart: str, info: PortalInfo) -> RoomID:
        """The room of an alias query (spec: it exists, with the alias, before the 200)."""
        async with self._alias_portals:
            existing = await self._store.portal(network, info.chat_id)
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
        portal = await self._store.link_portal(network, info.chat_id, room_id, origin="alias")
        await self._announce(portal, room_id)
        await self._portal_changed(network, info.chat_id, room_id)
        return room_id

    async def unlink_portal(self, room_id: RoomID) -> str | None:
        portal = await self._store.unlink_room(room_id)
        if portal is None:
            return None
        key = bridge_info_state_key(BRIDGE_SOFTWARE, portal.network, None, portal.remote_id)
        try:  # clients stop showing the room as bridged
            await self._matrix.bot.send_state(room_id, "m.bridge", key, {})
            await self._matrix.bot.send_state(room_id, "uk.half-shot.bridge", key, {})
        except MatrixError as error:
            log.info("could not clear the bridge info of %s: %s", room_id, error)
        await self._portal_changed(portal.network, portal.remote_id, None)
        return f"{portal.remote_id} on {portal.network}"

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
        event_id = await self._post(entry)
        self._waiters.resolve(entry.idempotency_key, event_id)

    async def _post(self, entry: OutboxEntry) -> EventID | None:
        """Post one stored send and mark it done; the Matrix event it became, if any."""
        payload = entry.payload
        network = str(payload["network"])
        cls = _CLASSES[str(payload.get("kind", "message"))]
        fields = {key: payload[key] for key in _FIELDS[cls] if key in payload}
        if isinstance(fields.get("mentions"), list):  # JSON gave back the tuple as a list
            fields["mentions"] = tuple(fields["mentions"])
        event = cls(**fields)
        portal = await self._store.portal_by_id(entry.portal_id)
        if portal.room_id is None and portal.unlinked:
            await self._store.mark_done(entry)  # an admin unlinked this chat: it is not bridged
            return None
        room_id = RoomID(portal.room_id) if portal.room_id else await self._create_room(portal)
        if isinstance(event, RemoteMessage):
            return await self._post_message(entry, network, portal, room_id, event)
        if isinstance(event, RemoteMember):
            await self._membership(network, event, room_id)
            await self._store.mark_done(entry)
            return None
        if isinstance(event, RemoteChatInfo):
            await self._chat_info(network, event, portal, room_id)
            await self._store.mark_done(entry)
            return None
        if isinstance(event, RemotePower):
            await self._power(network, event, room_id)
            await self._store.mark_done(entry)
            return None
        if isinstance(event, RemoteTyping):
            typist = await self._sender(network, event.sender_id, None, room_id)
            await typist.set_typing(room_id, event.typing, timeout_ms=event.timeout_ms)
            await self._store.mark_done(entry)
            return None
        target = await self._store.mapped_by_remote(portal.id, event.message_id)
        event_id: EventID | None = None
        if target is None:
            # The message was never bridged (said before the portal existed, or lost): nothing
            # on Matrix to edit, redact or react to.
            log.info("%s: %s of unknown message %s in %s ignored", network, payload["kind"], event.message_id,
                     event.chat_id)
        elif isinstance(event, RemoteEdit):
            sender = await self._sender(network, event.sender_id, event.sender_name, room_id)
            event_id = await sender.send_message(
                room_id, self._marked(network, sender, edit_content(EventID(target.event_id), event.text,
                                                                   html=event.html)),
                txn_id=entry.idempotency_key,
            )
        elif isinstance(event, RemoteDelete):
            event_id = await self._redact(network, target, room_id, entry.idempotency_key)
        elif isinstance(event, RemoteReaction):
            event_id = await self._react(network, event, target, room_id, entry.idempotency_key)
        elif isinstance(event, RemoteReceipt):
            reader = await self._sender(network, event.sender_id, None, room_id)
            await reader.mark_read(room_id, EventID(target.event_id))
        await self._store.mark_done(entry, event_id)
        return event_id

    async def _post_message(
        self, entry: OutboxEntry, network: str, portal: PortalRow, room_id: RoomID, message: RemoteMessage
    ) -> EventID | None:
        # Checked again here, after the chat's sends settled: ``emit`` may have run before the
        # ID of our own send was mapped (see core/echoes.py).
        await self._in_flight.settled(network, message.chat_id)
        if self._store.sent_by_us(portal.id, message.message_id):
            original = await self._original(portal.id, message.message_id)
            await self._store.mark_done(entry, original)
            return original
        sender = self._matrix.bot if message.by_bot else await self._sender(
            network, message.sender_id, message.sender_name, room_id)
        if message.sender_avatar_url and self._is_ghost(sender.user_id):
            await self._sync_avatar(network, message.sender_id, sender, message.sender_avatar_url)
        reply_to = await self._store.event_for(portal.id, message.reply_to) if message.reply_to else None
        event_id = await sender.send_text(
            room_id, message.text, html=message.html, msgtype=message.msgtype,
            reply_to=EventID(reply_to) if reply_to else None, mentions=[UserID(user) for user in message.mentions],
            extra_content=self._marked(network, sender, {}),
            txn_id=entry.idempotency_key, ts=message.timestamp_ms,
        )
        await self._store.mark_sent(
            entry, event_id=event_id, remote_id=message.message_id, sender_user_id=sender.user_id,
            sender_remote_id=message.sender_id, ts=message.timestamp_ms or 0, reply_to_remote_id=message.reply_to,
        )
        return event_id

    async def _sender(self, network: str, sender_id: str, sender_name: str | None, room_id: RoomID) -> Intent:
        """Who posts for ``sender_id``: the Matrix user logged in as them (double puppet), when
        the bridge can act as that user and they are in the room; else the sender's ghost."""
        owner = self._owner_of(network, sender_id) if self._owner_of is not None else None
        if owner is not None and self._double_puppet is not None:
            puppet = self._double_puppet.intent(owner)
            try:
                await puppet.ensure_joined(room_id)
                return puppet
            except MatrixError as error:
                log.info("cannot post as %s in %s (%s); posting through the ghost instead", owner, room_id, error)
        ghost = self._ghost(network, sender_id)
        await ghost.ensure_registered()
        stored = await self._store.ghost_name(network, sender_id)
        # Events without a name (typing, receipts) keep the name the ghost has.
        name = sender_name or (stored if stored is not None else sender_id)
        if stored != name:
            await ghost.set_displayname(name)
            await self._store.remember_ghost_name(network, sender_id, ghost.user_id, name)
        await ghost.ensure_joined(room_id)
        return ghost

    def _ghost(self, network: str, sender_id: str) -> Intent:
        return self._matrix.intent(ghost_user_id(self._ghost_prefixes[network], network, sender_id, self._server_name))

    async def _membership(self, network: str, event: RemoteMember, room_id: RoomID) -> None:
        if self._owner_of is not None and self._owner_of(network, event.sender_id) is not None:
            return  # a logged-in Matrix user's own account: their Matrix membership is theirs to decide
        if event.membership == "join":
            await self._sender(network, event.sender_id, event.sender_name, room_id)
            return
        ghost = self._ghost(network, event.sender_id)
        if event.membership == "leave":
            try:
                await ghost.leave(room_id, reason=event.reason)
            except MatrixError as error:  # not in the room (never spoke): nothing to undo
                log.debug("%s could not leave %s: %s", ghost.user_id, room_id, error)
            return
        # A kick or ban, by a remote user: by their ghost when it has the power, else the bot.
        actors = ([self._ghost(network, event.by)] if event.by else []) + [self._matrix.bot]
        reason = event.reason or f"{event.membership} on {network}" + (f" by {event.by}" if event.by else "")
        for actor in actors:
            try:
                if event.membership == "ban":
                    await actor.ban(room_id, ghost.user_id, reason=reason)
                else:
                    await actor.kick(room_id, ghost.user_id, reason=reason)
                return
            except MatrixError as error:
                log.info("%s could not %s %s in %s: %s", actor.user_id, event.membership, ghost.user_id, room_id, error)
        # Nobody has the power: at least the ghost leaves, so the room shows the truth.
        with contextlib.suppress(MatrixError):
            await ghost.leave(room_id, reason=reason)

    async def _power(self, network: str, event: RemotePower, room_id: RoomID) -> None:
        target = UserID(event.matrix_user) if event.matrix_user else self._ghost(network, event.sender_id).user_id
        bot = self._matrix.bot
        try:
            levels = await bot.get_state(room_id, "m.room.power_levels")
            users = dict(levels.get("users") or {})
            if users.get(target, levels.get("users_default", 0)) == event.level:
                return
            users[target] = event.level
            await bot.send_state(room_id, "m.room.power_levels", "", {**levels, "users": users})
        except MatrixError as error:
            log.info("could not give %s power level %d in %s: %s", target, event.level, room_id, error)

    async def _chat_info(self, network: str, event: RemoteChatInfo, portal: PortalRow, room_id: RoomID) -> None:
        changes = [("m.room.name", {"name": event.name}), ("m.room.topic", {"topic": event.topic})]
        for event_type, content in changes:
            if next(iter(content.values())) is None:
                continue
            actors = ([await self._sender(network, event.changed_by, None, room_id)] if event.changed_by else [])
            for actor in [*actors, self._matrix.bot]:
                try:
                    await actor.send_state(room_id, event_type, "", content)
                    break
                except MatrixError as error:
                    log.info("%s could not set %s in %s: %s", actor.user_id, event_type, room_id, error)

    async def _sync_avatar(self, network: str, sender_id: str, ghost: Intent, source: str) -> None:
        """Give the ghost the sender's picture when it changed; a bad picture never blocks the message."""
        if await self._store.ghost_avatar(network, sender_id) == source:
            return
        mxc: str | None = None
        try:
            if source.startswith("mxc://"):
                mxc = source
            elif self._fetcher is not None:
                response, data = await self._fetcher.request("GET", source, max_bytes=AVATAR_MAX_BYTES)
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                if response.status_code == 200 and content_type.startswith("image/"):
                    mxc = await ghost.upload_media(data, content_type, filename="avatar")
                else:
                    log.info("avatar of %s not used: HTTP %d, %s", ghost.user_id, response.status_code, content_type)
            if mxc is not None:
                await ghost.set_avatar_url(ContentURI(mxc))
        except (UnsafeURL, ResponseTooLarge, httpx.HTTPError, MatrixError) as error:
            log.info("avatar of %s not set from %s: %s", ghost.user_id, source, error)
        await self._store.remember_ghost_avatar(network, sender_id, ghost.user_id, source, mxc)

    def _marked(self, network: str, sender: Intent, content: dict[str, object]) -> dict[str, object]:
        # Events sent as a real Matrix user carry the marker, so their echo is not bridged back.
        if self._double_puppet is not None and sender.client is self._double_puppet:
            content[DOUBLE_PUPPET_MARKER] = network
        return content

    async def _redact(self, network: str, target: MappedMessage, room_id: RoomID, key: str) -> EventID:
        # The author of an event may always redact it: a ghost its own, a Matrix user theirs
        # through the double puppet. Otherwise it takes the bot's power level.
        author = UserID(target.sender_user_id)
        if self._is_ghost(author):
            intent = self._matrix.intent(author)
        elif self._double_puppet is not None and self._is_puppet_owner is not None and self._is_puppet_owner(author):
            intent = self._double_puppet.intent(author)  # acting as a user only for those logged in
        else:
            intent = self._matrix.bot
        return await intent.redact(room_id, EventID(target.event_id), reason=f"deleted on {network}", txn_id=key)

    def _is_ghost(self, user_id: str) -> bool:
        return user_id.startswith(tuple(f"@{prefix}" for prefix in self._ghost_prefixes.values()))

    async def _react(
        self, network: str, event: RemoteReaction, target: MappedMessage, room_id: RoomID, key: str
    ) -> EventID | None:
        sender = await self._sender(network, event.sender_id, event.sender_name, room_id)
        if event.removed:
            reaction = await self._store.take_reaction(target.id, event.sender_id, event.emoji)
            if reaction is None:
                return None
            return await sender.redact(room_id, EventID(reaction), reason="reaction removed", txn_id=key)
        event_id = await sender.send_message(
            room_id, self._marked(network, sender, reaction_content(EventID(target.event_id), event.emoji)),
            event_type="m.reaction", txn_id=key,
        )
        await self._store.add_reaction(target.id, event.sender_id, event.emoji, event_id)
        return event_id

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
        self._waiters.fail(entry.idempotency_key, _failed(repr(error), error))
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


def _failed(reason: str, cause: BaseException | None = None) -> DeliveryFailed:
    failure = DeliveryFailed(f"the event could not be posted on Matrix: {reason}")
    failure.__cause__ = cause
    return failure


_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _CLASSES.values()
}
"""Each remote event class's field names (read for every send: worked out once)."""


__all__ = ["DOUBLE_PUPPET_MARKER", "RemoteDelivery", "event_key", "idempotency_key"]
