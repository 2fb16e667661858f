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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bridgekit.commands import BAD_ARGUMENTS, NOT_FOUND
from bridgekit.connector import LoginFlow
from bridgekit.core.commands import Command, CommandContext, CommandRegistry, CommandReply, Prompt
from bridgekit.core.permissions import PermissionLevel, Permissions
from bridgekit.core.sessions import Sessions
from bridgekit.errors import MatrixError
from bridgekit.events import MatrixEvent
from bridgekit.ids import EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.room_power import POWER_LEVELS, RoomPower, read_room_power
from bridgekit.store.users import UserStore

log = logging.getLogger(__name__)

StatusSource = Callable[[], Awaitable[list[str]]]
"""Lines describing the bridge's state, for ``status``."""

PortalLinker = Callable[[str, str, RoomID], Awaitable[str | None]]
"""(network, chat as the user wrote it, room) -> make the room that chat's portal; returns the
chat's canonical ID (``#Python`` -> ``#python`` on IRC), or None when the network has no such chat."""


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
    unlink_portal: Callable[[RoomID], Awaitable[str | None]]
    """Stop bridging the room; returns the chat it was the portal of (None: it was no portal)."""
    sessions: Sessions
    login_flows: Callable[[str], Sequence[LoginFlow]]
    """The login flows a network offers (empty: no puppet logins there)."""
    double_puppet_status: Callable[[UserID], Awaitable[str]]
    """One line saying whether the bridge can post as this user (double puppeting)."""
    ask_link_approval: Callable[[str, str, RoomID, UserID], Awaitable[str | None]] | None = None
    """(network, chat, room, sender) for a ``link`` by someone who is not a bridge admin: None to
    link at once, else the answer while the network approves (``core/link_approval.py``)."""


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
        room_admin_level: int | str = POWER_LEVELS,
    ) -> None:
        """``room_admin_level``: the room power level that commands changing a room need (an event
        type: the level needed to send that state event there)."""
        self._matrix = matrix
        self._room_admin_level = room_admin_level
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
        reply = await self.registry.dispatch(body, self.context_for(sender, RoomID(event.room_id)))
        if reply is None:
            return False
        await self._send_reply(event, reply)
        return True

    def context_for(self, sender: UserID, room_id: RoomID) -> CommandContext:
        """The context of a command ``sender`` gives in ``room_id``: in the room, or through the
        provisioning API acting for them (the same levels, services and room power reader)."""
        return CommandContext(
            sender=sender, level=self._permissions.level_for(sender), room_id=room_id,
            in_management_room=self._rooms.get(room_id) == sender, services=self._services,
            room_power_reader=self._room_power,
        )

    def level_for(self, user_id: UserID) -> PermissionLevel:
        return self._permissions.level_for(user_id)

    async def run(self, sender: UserID, room_id: RoomID, name: str, args: list[str]) -> CommandReply:
        """Run the command ``name`` for ``sender`` in ``room_id`` as if they had sent it there, minus
        the conversation (the provisioning API's way in; the rules are the registry's)."""
        command = self.registry.find(name)
        if command is None:
            raise ValueError(f"no command {name!r}")
        reply = await self.registry.execute(command, args, self.context_for(sender, room_id))
        return reply if reply.prompt is None else CommandReply(f"'{name}' asks questions", errcode=BAD_ARGUMENTS)

    async def login(self, sender: UserID, network: str, flow_id: str | None, answers: dict[str, str]) -> CommandReply:
        """``login``'s steps in one call (the provisioning API): the command's level, its choice of
        flow and the same login, with every answer given at once."""
        command = self.registry.find("login")
        context = self.context_for(sender, RoomID(""))
        if command is not None and context.level < command.level:
            return self.registry.refusal(command, context)
        chosen = choose_login(self._services, [network] + ([flow_id] if flow_id else []))
        if isinstance(chosen, CommandReply):
            return chosen
        network, flow = chosen
        missing = [field.key for field in flow.fields if not answers.get(field.key)]
        if missing:
            return CommandReply(f"{network}'s login '{flow.id}' needs: {', '.join(missing)}.", errcode=BAD_ARGUMENTS)
        given = {field.key: answers[field.key] if field.secret else answers[field.key].strip() for field in flow.fields}
        return CommandReply(await self._services.sessions.login(network, sender, flow.id, given))

    async def _room_power(self, room_id: RoomID, user_id: UserID) -> RoomPower:
        return await read_room_power(self._matrix.bot, room_id, user_id, required=self._room_admin_level)

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
            await self._set_management_room(inviter, room_id)
            await bot.send_text(
                room_id,
                "Hello! This is your management room for the bridge: send 'help' to see what you can do.",
                msgtype="m.notice", txn_id=f"welcome:{event.event_id}",
            )

    async def tell(self, user_id: UserID, text: str) -> None:
        """A private notice to ``user_id``: in their management room, opened if they have none."""
        room_id = await self._users.management_room(user_id)
        bot = self._matrix.bot
        if room_id is None:
            room_id = await bot.create_room(invitees=[user_id], is_direct=True, preset="trusted_private_chat")
            await self._set_management_room(user_id, room_id)
        await bot.send_text(RoomID(room_id), text, msgtype="m.notice", mentions=[user_id])

    async def _set_management_room(self, user_id: UserID, room_id: str) -> None:
        """Store ``room_id`` as the user's management room, and keep the in-memory map in step."""
        await self._users.set_management_room(user_id, room_id)
        self._rooms = {room: user for room, user in self._rooms.items() if user != user_id}
        self._rooms[room_id] = user_id

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
        # A room's own admins may link and unlink it; bridge admins may in any room.
        Command(
            "link", "Make this room the portal of a remote chat", _link,
            usage="<network> <chat>", level=PermissionLevel.USER, room_admin=True, admin_anywhere=True,
        ),
        Command(
            "unlink", "Stop bridging this room (it stays, as a plain Matrix room)", _unlink,
            level=PermissionLevel.USER, room_admin=True, admin_anywhere=True,
        ),
        Command(
            "login", "Log in to a network with your own account (puppeting)", _login,
            usage="[network] [flow]", level=PermissionLevel.USER,
        ),
        Command("logout", "Log out of a network and delete your stored credentials", _logout,
                usage="[network]", level=PermissionLevel.USER),
        Command("logins", "List your logins and how they are doing", _logins, level=PermissionLevel.USER),
        Command("reconnect", "Connect your login to a network again", _reconnect,
                usage="[network]", level=PermissionLevel.USER),
        Command(
            "relay", "Turn relaying through the bridge bot on or off in this portal", _relay,
            usage="on|off", level=PermissionLevel.USER, room_admin=True,
        ),
    ]


async def _status(context: CommandContext, _args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    lines = await services.status()
    lines.append(f"Your permission level: {context.level.label}.")
    if context.level >= PermissionLevel.USER:
        logins = await services.sessions.describe_logins(context.sender)
        lines.append("Your logins: " + ("; ".join(logins) if logins else "none") + ".")
        lines.append(await services.double_puppet_status(context.sender))
    return CommandReply("\n".join(lines))


def _login_network(services: ManagementServices, args: list[str], verb: str) -> tuple[str | None, str | None]:
    """(network, None) or (None, what to tell the user)."""
    with_logins = [network for network in services.networks if services.login_flows(network)]
    if args:
        if args[0] in with_logins:
            return args[0], None
        return None, (f"There is no network '{args[0]}' with logins here (networks with logins: "
                      f"{', '.join(with_logins) or 'none'}).")
    if len(with_logins) == 1:
        return with_logins[0], None
    if not with_logins:
        return None, "No network of this bridge offers logins: it bridges through the relay or virtual users."
    return None, f"Which network? Send '{verb} <network>', one of: {', '.join(with_logins)}."


async def _login(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if not context.in_management_room:
        return CommandReply("Log in from your management room (a direct chat with me), so your answers stay private.",
                            errcode=BAD_ARGUMENTS)
    chosen = choose_login(services, args)
    if isinstance(chosen, CommandReply):
        return chosen
    network, flow = chosen
    return _ask(services, network, flow, {}, f"Logging in to {network} ({flow.name}). Send 'cancel' to stop.")


def choose_login(services: ManagementServices, args: list[str]) -> tuple[str, LoginFlow] | CommandReply:
    """``login [network] [flow]``'s choice of network and flow (the provisioning API's too), or
    the refusal that says what to choose from."""
    network, problem = _login_network(services, args[:1], "login")
    if network is None:
        return CommandReply(problem or "", errcode=NOT_FOUND)
    flows = list(services.login_flows(network))
    if len(args) > 1:
        chosen = [f for f in flows if f.id == args[1]]
        if not chosen:
            return CommandReply(f"{network} has no login flow '{args[1]}' (flows: {', '.join(f.id for f in flows)}).",
                                errcode=NOT_FOUND)
        return network, chosen[0]
    return network, flows[0]


def _ask(
    services: ManagementServices, network: str, flow: LoginFlow, answers: dict[str, str], intro: str
) -> CommandReply:
    """Ask the next question of the flow; when all are answered, log in."""
    field = flow.fields[len(answers)]

    async def on_answer(context: CommandContext, answer: str) -> CommandReply:
        given = {**answers, field.key: answer.strip() if not field.secret else answer}
        if len(given) < len(flow.fields):
            return _ask(services, network, flow, given, "")
        return CommandReply(await services.sessions.login(network, context.sender, flow.id, given))

    question = f"{intro}\n{field.prompt}".strip()
    if field.secret:
        question += " (your message will be redacted)"
    return CommandReply(question, prompt=Prompt(on_answer, secret=field.secret))


async def _logout(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    network, problem = _login_network(services, args[:1], "logout")
    if network is None:
        return CommandReply(problem or "", errcode=NOT_FOUND)
    return CommandReply(await services.sessions.logout(network, context.sender))


async def _logins(context: CommandContext, _args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    lines = await services.sessions.describe_logins(context.sender)
    if not lines:
        return CommandReply("You are not logged in anywhere. Send 'login' to log in.")
    return CommandReply("Your logins:\n" + "\n".join(f"  {line}" for line in lines))


async def _reconnect(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    network, problem = _login_network(services, args[:1], "reconnect")
    if network is None:
        return CommandReply(problem or "", errcode=NOT_FOUND)
    return CommandReply(await services.sessions.reconnect(network, context.sender))


async def _unlink(context: CommandContext, _args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if context.in_management_room:
        return CommandReply("Send 'unlink' in the portal room you want to stop bridging.", errcode=BAD_ARGUMENTS)
    chat = await services.unlink_portal(context.room_id)
    if chat is None:
        return CommandReply("This room is not a portal: there is nothing to unlink.", errcode=NOT_FOUND)
    return CommandReply(f"This room no longer bridges {chat}.")


async def _link(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if len(args) != 2:
        return CommandReply("Usage: link <network> <chat>, in the room to link.", errcode=BAD_ARGUMENTS)
    network, chat = args
    if network not in services.networks:
        known = ", ".join(services.networks) or "none"
        return CommandReply(f"There is no network '{network}' in this bridge (known: {known}).", errcode=NOT_FOUND)
    if context.in_management_room:
        return CommandReply("Send 'link' in the room you want to link, not in your management room.",
                            errcode=BAD_ARGUMENTS)
    if context.level < PermissionLevel.ADMIN and services.ask_link_approval is not None:
        asked = await services.ask_link_approval(network, chat, context.room_id, context.sender)
        if asked is not None:
            return CommandReply(asked)
    linked = await services.link_portal(network, chat, context.room_id)
    if linked is None:
        return CommandReply(f"{network} has no chat '{chat}' that can be bridged: check its name.", errcode=NOT_FOUND)
    return CommandReply(f"This room is now the portal of {linked} on {network}.")


async def _relay(context: CommandContext, args: list[str]) -> CommandReply:
    services: ManagementServices = context.services
    if len(args) != 1 or args[0].lower() not in ("on", "off"):
        return CommandReply("Usage: relay on|off, in the portal room.", errcode=BAD_ARGUMENTS)
    enabled = args[0].lower() == "on"
    if not await services.set_relay(context.room_id, enabled):
        return CommandReply("This room is not a portal: there is nothing to relay here.", errcode=NOT_FOUND)
    if enabled:
        return CommandReply("Relay on: messages from people without their own bridged identity are relayed.")
    return CommandReply("Relay off: only people with their own bridged identity are bridged here.")


__all__ = ["ManagementRoom", "ManagementServices", "choose_login"]
