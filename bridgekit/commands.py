"""What a management-room command is: the types connector authors use to add their own.

The registry that reads messages and dispatches them is ``bridgekit.core.commands``; this module
holds only the values that cross the connector boundary (a connector's
:meth:`~bridgekit.connector.CommandProvider.commands` returns :class:`Command` objects).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from bridgekit.errors import MatrixError
from bridgekit.ids import RoomID, UserID
from bridgekit.room_power import RoomPower


class PermissionLevel(IntEnum):
    """Ordered levels: each allows everything the ones below it allow."""

    NONE = 0
    """The bridge ignores this user's messages and refuses their commands."""
    RELAY = 1
    """Their messages in portals are relayed by the bridge bot; they cannot log in."""
    USER = 2
    """They can log in with their own remote account and manage their own bridging."""
    ADMIN = 3
    """They can manage the bridge itself (every portal, every user's sessions)."""

    @property
    def label(self) -> str:
        """The word the config uses for this level: ``"relay"``, ``"user"``, ..."""
        return self.name.lower()


CommandHandler = Callable[["CommandContext", list[str]], Awaitable["CommandReply"]]
"""A command's code: gets the context and the arguments after the name, returns the reply."""

AnswerHandler = Callable[["CommandContext", str], Awaitable["CommandReply"]]
"""A prompt's code: gets the context and the user's whole message, unparsed (passwords have quotes)."""

RoomPowerReader = Callable[[RoomID, UserID], Awaitable[RoomPower]]
"""(room, user) -> the user's power in the room against the level the bridge's config requires
(``room_admin_level``); built by the management room with the bot's intent."""

_NAME = re.compile(r"^[^\s'\"\\]+$")

# What went wrong, as Matrix error codes: a reply carrying one is a refusal or a failure, and the
# provisioning API answers it with that code and the reply's text (the words the room would read).
REFUSED = "M_FORBIDDEN"
"""The sender lacks a bridge permission level or a room power level."""
NOT_FOUND = "M_NOT_FOUND"
"""What the command names does not exist (no such network or chat; the room is no portal)."""
BAD_ARGUMENTS = "M_INVALID_PARAM"
"""The arguments are wrong, or the command was sent in the wrong room."""
UNKNOWN_COMMAND = "M_UNRECOGNIZED"
FAILED = "M_UNKNOWN"
"""The bridge failed (the details are in its log under the error id the text gives)."""


@dataclass(frozen=True)
class CommandContext:
    """Who sent the command, where, and what the handlers may use."""

    sender: UserID
    level: PermissionLevel
    room_id: RoomID
    in_management_room: bool
    services: Any = None
    """The bridge's services (sessions, portals, connectors) as the composition root builds them.

    Opaque here: handlers know its concrete type; typed ``Any`` so that this module, which only
    routes, does not have to import everything a handler might need.
    """
    room_power_reader: RoomPowerReader | None = None
    """Reads the sender's power in this room; None only in contexts built by hand (tests)."""

    async def room_power(self) -> RoomPower:
        """The sender's power level in this room, against the level the bridge requires for
        room-changing commands. Raises :class:`~bridgekit.errors.MatrixError` when the room's
        state cannot be read (the bot is not in the room)."""
        if self.room_power_reader is None:
            raise RuntimeError("this command context cannot read room power levels")
        return await self.room_power_reader(self.room_id, self.sender)

    async def check_room_power(
        self, action: str, level: PermissionLevel = PermissionLevel.USER,
    ) -> RoomPower | CommandReply:
        """For commands that change the room: the sender's :class:`RoomPower` when they have both
        the bridge permission ``level`` and the room power level the bridge requires; otherwise
        the refusal to answer, which says which of the two is missing (``action`` names what was
        asked, e.g. ``"webhook create"``). Refuses, too, when the room's state cannot be read."""
        try:
            power = await self.room_power()
        except MatrixError as error:
            return CommandReply(
                f"'{action}' needs power in this room, and I could not read this room's power levels "
                f"({type(error).__name__}); is the bridge bot still in the room?", errcode=REFUSED,
            )
        refusal = authority_refusal(action, level, self.level, power)
        return power if refusal is None else CommandReply(refusal, errcode=REFUSED)


@dataclass(frozen=True)
class Prompt:
    """A question the user's next message in the same room answers."""

    on_answer: AnswerHandler
    timeout: float = 300.0
    """Seconds the answer may take; a later answer is refused (and redacted if secret), not used."""
    secret: bool = False
    """The answer is a secret (a password): the caller must redact the user's message."""

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"a prompt's timeout must be positive, not {self.timeout}")


@dataclass(frozen=True)
class CommandReply:
    """What the caller sends back to the room, and what it must do with the user's message."""

    text: str
    html: str | None = None
    prompt: Prompt | None = None
    """Set by a handler to ask a follow-up question (the framework installs it)."""
    redact_message: bool = False
    """The user's message must be redacted: set by the framework when it answered a secret prompt, and
    by a handler whose arguments are secret (a command that takes a token)."""
    errcode: str | None = None
    """None: the command did what was asked. Else it was refused or failed, and this says how
    (:data:`REFUSED`, :data:`NOT_FOUND`, :data:`BAD_ARGUMENTS`, ...): the provisioning API answers
    with it, and with ``text`` as the error, so a refusal reads the same in the room and the API."""

    @property
    def ok(self) -> bool:
        return self.errcode is None


@dataclass(frozen=True)
class Command:
    """One command: what ``help`` shows about it, who may run it and the code that runs it."""

    name: str
    summary: str
    """One line, shown in the ``help`` list."""
    handler: CommandHandler
    usage: str = ""
    """The arguments after the name, as ``help <command>`` shows them: ``<on|off>``."""
    level: PermissionLevel = PermissionLevel.USER
    aliases: tuple[str, ...] = ()
    room_admin: bool = False
    """The command changes the room it is sent in: besides ``level``, the sender needs the room
    power level the bridge requires there (the registry checks it, see ``room_admin_level``)."""
    admin_anywhere: bool = False
    """With ``room_admin``: a bridge admin needs no power in the room (``link``, ``unlink``: the
    bridge admin's own right over every portal)."""

    def __post_init__(self) -> None:
        for name in self.names:
            if not _NAME.match(name):
                raise ValueError(f"command name {name!r} must be one word without quotes or backslashes")
        if not self.summary or "\n" in self.summary:
            raise ValueError(f"command {self.name!r}: the summary must be one non-empty line")

    @property
    def names(self) -> tuple[str, ...]:
        """The name and the aliases, lower-cased as the registry matches them."""
        return tuple(dict.fromkeys(name.casefold() for name in (self.name, *self.aliases)))


def authority_refusal(
    action: str, needed: PermissionLevel, have: PermissionLevel, power: RoomPower,
) -> str | None:
    """Why ``action`` is refused, naming what is missing (bridge permission level and/or room
    power level, with the numbers), or None when both are there."""
    bridge_ok, room_ok = have >= needed, power.allowed
    if bridge_ok and room_ok:
        return None
    bridge = f"the bridge permission level '{needed.label}' (yours is '{have.label}')"
    room = f"power level {power.needed} in this room (yours is {power.shown_level})"
    if not bridge_ok and not room_ok:
        missing, fix = f"{bridge} and {room}", f"{_BRIDGE_FIX} and {_ROOM_FIX}"
    elif not bridge_ok:
        missing, fix = f"{bridge}; your power in this room ({power.shown_level}) is enough", _BRIDGE_FIX
    else:
        missing, fix = f"{room}; your bridge permission level ('{have.label}') is enough", _ROOM_FIX
    return f"'{action}' needs {missing}. {fix[0].upper()}{fix[1:]}."


_BRIDGE_FIX = "the bridge admin grants permission levels in the 'permissions' section of the bridge's config"
_ROOM_FIX = "a room admin can raise your power level in this room"


__all__ = [
    "BAD_ARGUMENTS",
    "FAILED",
    "NOT_FOUND",
    "REFUSED",
    "UNKNOWN_COMMAND",
    "AnswerHandler",
    "Command",
    "CommandContext",
    "CommandHandler",
    "CommandReply",
    "PermissionLevel",
    "Prompt",
    "RoomPowerReader",
    "authority_refusal",
]
