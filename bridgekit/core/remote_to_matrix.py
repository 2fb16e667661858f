"""Remote -> Matrix: one stored remote event is posted in its portal, by one handler per type.

The mirror of ``core/matrix_to_remote.py``. It runs inside the outbox's ordered worker of the
portal (``core/remote_delivery.py``), so a chat's events land in the order they were emitted, and
a failure is retried (then reported) there. Each handler posts through the sender's identity
(``core/remote_senders.py``) with the outbox row's idempotency key as the Matrix transaction ID,
so a post replayed after a crash lands once; it returns the Matrix event the remote event
became, if any, and the outbox row is then marked done with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.portal_rooms import PortalRooms
from bridgekit.core.remote_senders import RemoteSenders
from bridgekit.errors import MatrixError
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
    remote_event_from_json,
)
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import edit_content, reaction_content
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.message_map import MappedMessage
from bridgekit.store.outbox import OutboxEntry
from bridgekit.store.portals import PortalRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Posting:
    """Where a stored event is being posted."""

    entry: OutboxEntry
    network: str
    portal: PortalRow
    room_id: RoomID


Handler = Callable[[Posting, Any], Awaitable[EventID | None]]
"""Posts one type of remote event (the table's key says which); the Matrix event it became."""


class RemoteToMatrix:
    def __init__(
        self, stores: BridgeStores, senders: RemoteSenders, rooms: PortalRooms, in_flight: SendsInFlight
    ) -> None:
        self._stores = stores
        self._senders = senders
        self._rooms = rooms
        self._in_flight = in_flight
        self._handlers: Mapping[type[RemoteEvent], Handler] = {
            RemoteMessage: self._message,
            RemoteEdit: self._edit,
            RemoteDelete: self._delete,
            RemoteReaction: self._reaction,
            RemoteTyping: self._typing,
            RemoteReceipt: self._receipt,
            RemoteMember: self._member,
            RemoteChatInfo: self._chat_info,
            RemotePower: self._power,
        }

    async def post(self, entry: OutboxEntry) -> EventID | None:
        """Post one stored send and mark it done; the Matrix event it became, if any."""
        event = remote_event_from_json(entry.payload)
        portal = await self._stores.portals.portal_by_id(entry.portal_id)
        event_id: EventID | None = None
        if portal.room_id is not None or not portal.unlinked:  # unlinked by an admin: not bridged
            room_id = RoomID(portal.room_id) if portal.room_id else await self._rooms.create_room(portal)
            posting = Posting(entry, str(entry.payload["network"]), portal, room_id)
            event_id = await self._handlers[type(event)](posting, event)
        self._stores.outbox.mark_done(entry, event_id)
        return event_id

    # ---- messages and what refers to them -------------------------------------------------------

    async def _message(self, at: Posting, message: RemoteMessage) -> EventID | None:
        messages = self._stores.messages
        # Checked again here, after the chat's sends settled: ``emit`` may have run before the
        # ID of our own send was mapped (see core/echoes.py).
        await self._in_flight.settled(at.network, message.chat_id)
        if messages.sent_by_us(at.portal.id, message.message_id):
            original = await messages.event_for(at.portal.id, message.message_id)
            return EventID(original) if original else None
        sender = await self._senders.sender(at.network, message.sender_id, message.sender_name, at.room_id,
                                            avatar=message.sender_avatar_url)
        reply_to = await messages.event_for(at.portal.id, message.reply_to) if message.reply_to else None
        event_id = await sender.send_text(
            at.room_id, message.text, html=message.html, msgtype=message.msgtype,
            reply_to=EventID(reply_to) if reply_to else None, mentions=[UserID(user) for user in message.mentions],
            extra_content=self._senders.marked(at.network, sender, {}),
            txn_id=at.entry.idempotency_key, ts=message.timestamp_ms,
        )
        messages.map_remote_message(
            at.portal.id, message.message_id, event_id, sender_user_id=sender.user_id,
            sender_remote_id=message.sender_id, ts=message.timestamp_ms or 0, reply_to_remote_id=message.reply_to,
            send_txn_id=at.entry.idempotency_key,
        )
        return event_id

    async def _target(self, at: Posting, event: RemoteEdit | RemoteDelete | RemoteReaction | RemoteReceipt
                      ) -> MappedMessage | None:
        """The Matrix event of the message ``event`` refers to; None (logged) when it was never
        bridged (said before the portal existed, or lost): nothing on Matrix to act on."""
        target = await self._stores.messages.mapped_by_remote(at.portal.id, event.message_id)
        if target is None:
            log.info("%s: %s of unknown message %s in %s ignored", at.network, at.entry.payload.get("kind"),
                     event.message_id, event.chat_id)
        return target

    async def _edit(self, at: Posting, edit: RemoteEdit) -> EventID | None:
        target = await self._target(at, edit)
        if target is None:
            return None
        sender = await self._senders.sender(at.network, edit.sender_id, edit.sender_name, at.room_id)
        content = edit_content(EventID(target.event_id), edit.text, html=edit.html)
        return await sender.send_message(at.room_id, self._senders.marked(at.network, sender, content),
                                         txn_id=at.entry.idempotency_key)

    async def _delete(self, at: Posting, delete: RemoteDelete) -> EventID | None:
        target = await self._target(at, delete)
        if target is None:
            return None
        redactor = self._senders.redactor(UserID(target.sender_user_id))
        return await redactor.redact(at.room_id, EventID(target.event_id), reason=f"deleted on {at.network}",
                                     txn_id=at.entry.idempotency_key)

    async def _reaction(self, at: Posting, reaction: RemoteReaction) -> EventID | None:
        target = await self._target(at, reaction)
        if target is None:
            return None
        messages = self._stores.messages
        sender = await self._senders.sender(at.network, reaction.sender_id, reaction.sender_name, at.room_id)
        if reaction.removed:
            given = await messages.take_reaction(target.id, reaction.sender_id, reaction.emoji)
            if given is None:
                return None
            return await sender.redact(at.room_id, EventID(given), reason="reaction removed",
                                       txn_id=at.entry.idempotency_key)
        content = reaction_content(EventID(target.event_id), reaction.emoji)
        event_id = await sender.send_message(at.room_id, self._senders.marked(at.network, sender, content),
                                             event_type="m.reaction", txn_id=at.entry.idempotency_key)
        await messages.add_reaction(target.id, reaction.sender_id, reaction.emoji, event_id)
        return event_id

    async def _receipt(self, at: Posting, receipt: RemoteReceipt) -> None:
        target = await self._target(at, receipt)
        if target is not None:
            reader = await self._senders.sender(at.network, receipt.sender_id, None, at.room_id)
            await reader.mark_read(at.room_id, EventID(target.event_id))

    async def _typing(self, at: Posting, typing: RemoteTyping) -> None:
        typist = await self._senders.sender(at.network, typing.sender_id, None, at.room_id)
        await typist.set_typing(at.room_id, typing.typing, timeout_ms=typing.timeout_ms)

    # ---- the chat: members, power, name and topic -----------------------------------------------

    async def _member(self, at: Posting, member: RemoteMember) -> None:
        if self._senders.is_logged_in(at.network, member.sender_id):
            return  # a logged-in Matrix user's own account: their Matrix membership is theirs to decide
        if member.membership == "join":
            await self._senders.sender(at.network, member.sender_id, member.sender_name, at.room_id)
            return
        ghost = self._senders.ghost(at.network, member.sender_id)
        if member.membership == "leave":
            try:
                await ghost.leave(at.room_id, reason=member.reason)
            except MatrixError as error:  # not in the room (never spoke): nothing to undo
                log.debug("%s could not leave %s: %s", ghost.user_id, at.room_id, error)
            return
        # A kick or ban, by a remote user: by their ghost when it has the power, else the bot.
        actors = ([self._senders.ghost(at.network, member.by)] if member.by else []) + [self._senders.bot]
        reason = member.reason or f"{member.membership} on {at.network}" + (f" by {member.by}" if member.by else "")
        for actor in actors:
            try:
                if member.membership == "ban":
                    await actor.ban(at.room_id, ghost.user_id, reason=reason)
                else:
                    await actor.kick(at.room_id, ghost.user_id, reason=reason)
                return
            except MatrixError as error:
                log.info("%s could not %s %s in %s: %s", actor.user_id, member.membership, ghost.user_id,
                         at.room_id, error)
        # Nobody has the power: at least the ghost leaves, so the room shows the truth.
        with contextlib.suppress(MatrixError):
            await ghost.leave(at.room_id, reason=reason)

    async def _power(self, at: Posting, power: RemotePower) -> None:
        target = UserID(power.matrix_user) if power.matrix_user else self._senders.ghost(at.network,
                                                                                          power.sender_id).user_id
        bot = self._senders.bot
        try:
            levels = await bot.get_state(at.room_id, "m.room.power_levels")
            users = dict(levels.get("users") or {})
            if users.get(target, levels.get("users_default", 0)) == power.level:
                return
            users[target] = power.level
            await bot.send_state(at.room_id, "m.room.power_levels", "", {**levels, "users": users})
        except MatrixError as error:
            log.info("could not give %s power level %d in %s: %s", target, power.level, at.room_id, error)

    async def _chat_info(self, at: Posting, info: RemoteChatInfo) -> None:
        changes = [("m.room.name", {"name": info.name}), ("m.room.topic", {"topic": info.topic})]
        for event_type, content in changes:
            if next(iter(content.values())) is None:
                continue
            actors = [self._senders.bot]
            if info.changed_by:
                actors.insert(0, await self._senders.sender(at.network, info.changed_by, None, at.room_id))
            for actor in actors:
                try:
                    await actor.send_state(at.room_id, event_type, "", content)
                    break
                except MatrixError as error:
                    log.info("%s could not set %s in %s: %s", actor.user_id, event_type, at.room_id, error)


__all__ = ["Handler", "Posting", "RemoteToMatrix"]
