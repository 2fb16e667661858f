"""The management room: the bridge bot's DM with each user, and commands in portals.

The bot accepts an invite from anyone the permissions let use the bridge; an invite marked as a
direct chat makes that room the inviter's management room, where every message is a command.
In other rooms a message starting with the prefix (``!bk status``) is a command and is not
bridged. Replies are notices from the bot with transaction IDs derived from the message, so an
event replayed after a crash is not answered twice; a message answering a secret prompt (a
password) is redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridgekit.core.commands import Command, CommandContext, CommandRegistry, CommandReply
from bridgekit.core.permissions import PermissionLevel, Permissions
from bridgekit.errors import MatrixError
from bridgekit.events import MatrixEvent
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store.users import UserStore

log = logging.getLogger(__name__)

StatusSource = Callable[[], Awaitable[list[str]]]
"""Lines describing the bridge's state, for ``status``."""

PortalLinker = Callable[[str, str, RoomID], Awaitable[None]]
"""(network, chat id, room) -> make the room that chat's portal."""


@dataclass(frozen=True)
class ManagementServices:
    """What the built-in commands act on (the ``services`` of their CommandContext)."""

    status: StatusSource
    link_portal: PortalLinker
    networks: tuple[str, ...]
    set_relay: Callable[[RoomID, bool], Awaitable[bool]]
    """Turn the relay of the portal in this room on or off; False when the room is no portal."""
    follow_upgrade: Callable[[RoomID, RoomID], Awaitable[bool]]
    """Move the portal of an upgraded room to its successor."""


class ManagementRoom:
    """Routes bot invites and command messages; everything else is left to the connectors."""

    def __init__(
        self,
        matrix: MatrixClient,
        users: UserStore,
        permissions: Permissions,
        services: ManagementServices,
        *,
        prefix: str = "!bk",
    ) -> None:
        self._matrix = matrix
        self._users = users
        self._permissions = permissions
        self._services = services
        self.registry = CommandRegistry(prefix=prefix)
        for command in _builtin_commands():
            self.registry.register(command)
        # room ID -> user: every message the bridge sees asks "is this a management room?", so
        # the answer is kept in memory (one row per user), loaded by load() and kept in step here.
        self._rooms: dict[str, str] = {}

    async def load(self) -> None:
        """Read the management rooms; call once before events are handled."""
        self._rooms = await self._users.management_rooms()

    async def handle(self, event: MatrixEvent) -> bool:
        """Handle the event if it is for the management side; True when it was consumed."""
        bot = self._matrix.bot_user_id
        if event.type == "m.room.encryption" and event.state_key == "":
            await self._encrypted(event)
            return False
        if event.type == "m.room.tombstone" and event.state_key == "":
            replacement = event.content.get("replacement_room")
            if isinstance(replacement, str) and replacement:
                await self._services.follow_upgrade(RoomID(event.room_id), RoomID(replacement))
            return False
        if event.type == "m.room.member" and event.state_key == bot:
            if event.content.get("membership") == "invite":
                await self._invited(event)
            return False  # connectors may want to know the bot was invited (to link a portal)
        if event.type != "m.room.message" or event.sender == bot:
            return False
        body = event.content.get("body")
        if not isinstance(body, str):
            return False
        sender = UserID(event.sender)
        in_management = self._rooms.get(event.room_id) == sender
        if not self.registry.concerns(body, sender, RoomID(event.room_id), in_management_room=in_management):
            return False
        context = CommandContext(
            sender=sender, level=self._permissions.level_for(sender), room_id=RoomID(event.room_id),
            in_management_room=in_management, services=self._services,
        )
        reply = await self.registry.dispatch(body, context)
        if reply is None:
            return False
        await self._send_reply(event, reply)
        return True

    async def _invited(self, event: MatrixEvent) -> None:
        inviter = UserID(event.sender)
        room_id = RoomID(event.room_id)
        bot = self._matrix.bot
        if self._permissions.level_for(inviter) < PermissionLevel.RELAY:
            log.info("ignoring an invite to %s from %s, who may not use this bridge", room_id, inviter)
            return
        try:
            await bot.join(room_id)
        except MatrixError as error:
            log.warning("could not accept the invite of %s to %s: %s", inviter, room_id, error)
            return
        if event.content.get("is_direct") is True:
            await self._users.set_management_room(inviter, room_id)
            self._rooms = {room: user for room, user in self._rooms.items() if user != inviter}
            self._rooms[room_id] = inviter
            await bot.send_text(
                room_id,
                "Hello! This is your management room for the bridge: send 'help' to see what you can do.",
                msgtype="m.notice", txn_id=f"welcome:{event.event_id}",
            )

    async def _encrypted(self, event: MatrixEvent) -> None:
        # bridgekit cannot decrypt (yet): say so plainly rather than let messages vanish.
        await self._matrix.bot.send_text(
            RoomID(event.room_id),
            "This room is now encrypted. The bridge cannot read encrypted messages, so what is said "
            "here from now on will not reach the other side. To keep bridging, use an unencrypted room.",
            msgtype="m.notice", txn_id=f"encrypted:{event.event_id}",
        )

    async def _send_reply(self, event: MatrixEvent, reply: CommandReply) -> None:
        room_id = RoomID(event.room_id)
        bot = self._matrix.bot
        if reply.redact_message:
            try:
                await bot.redact(room_id, EventID(event.event_id), reason="it answered a secret question",
                                 txn_id=f"redact:{event.event_id}")
            except MatrixError as error:
                log.warning("could not redact a secret answer in %s: %s", room_id, error)
        await bot.send_text(
            room_id, reply.text, html=reply.html, msgtype="m.notice", txn_id=f"reply:{event.event_id}"
        )


def _builtin_commands() -> list[Command]:
    return [
        Command("status", "Show how the bridge is doing", _status, level=PermissionLevel.RELAY),
        Command(
            "link", "Make this room the portal of a remote chat", _link,
            usage="<network> <chat>", level=PermissionLevel.ADMIN,
        ),
        Command(
            "relay", "Turn relaying through the bridge bot on or off in this portal", _relay,
            usage="on|off", level=PermissionLevel.USER,
        ),
    ]


async def _status(context: CommandContext, _args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    lines = await services.status()
    lines.append(f"Your permission level: {context.level.label}.")
    return CommandReply("\n".join(lines))


async def _link(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if len(args) != 2:
        return CommandReply("Usage: link <network> <chat>, in the room to link.")
    network, chat = args
    if network not in services.networks:
        known = ", ".join(services.networks) or "none"
        return CommandReply(f"There is no network '{network}' in this bridge (known: {known}).")
    if context.in_management_room:
        return CommandReply("Send 'link' in the room you want to link, not in your management room.")
    await services.link_portal(network, chat, context.room_id)
    return CommandReply(f"This room is now the portal of {chat} on {network}.")


async def _relay(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if len(args) != 1 or args[0].lower() not in ("on", "off"):
        return CommandReply("Usage: relay on|off, in the portal room.")
    enabled = args[0].lower() == "on"
    if not await services.set_relay(context.room_id, enabled):
        return CommandReply("This room is not a portal: there is nothing to relay here.")
    if enabled:
        return CommandReply("Relay on: messages from people without their own bridged identity are relayed.")
    return CommandReply("Relay off: only people with their own bridged identity are bridged here.")


__all__ = ["ManagementRoom", "ManagementServices"]
