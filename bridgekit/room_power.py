"""Who holds power in a Matrix room: a user's power level there and the level an action needs.

Commands that change what a room is bridged to (``relay on|off``, a connector's webhooks) need,
besides the bridge's own permission level, power in the room itself: by default the level needed
to send ``m.room.power_levels`` there, i.e. the room's own admins. The pure half computes that
from the contents of two state events, with the room version's rules:

- A user's level is ``users[user]``, else ``users_default``, else 0. Rooms before v10 may hold
  levels as strings of digits (``"50"``).
- A room without ``m.room.power_levels``: its creator has 100 and everyone else 0; the level to
  send a state event is 50 (``state_default``'s default; the spec's older text said 0, which
  Synapse and the current spec do not follow).
- Room versions 12 and later (MSC4289; every version not in "1".."11"): the creators, the
  ``sender`` of ``m.room.create`` and the users in its ``content.additional_creators``, have
  infinite power, whatever ``users`` says.

The effectful half (:func:`read_room_power`) reads both events with the bot's intent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bridgekit.errors import MatrixNotFound
from bridgekit.events import JSONDict
from bridgekit.ids import RoomID, UserID

POWER_LEVELS = "m.room.power_levels"
"""The event type whose send level is, by default, what room-changing commands need."""

ROOM_CREATE = "m.room.create"

VERSIONS_WITHOUT_PRIVILEGED_CREATORS = frozenset(str(number) for number in range(1, 12))
"""Room versions 1-11: their creators have only the power ``m.room.power_levels`` gives them."""

CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100
STATE_DEFAULT = 50


@dataclass(frozen=True, slots=True)
class RoomPower:
    """A user's power in one room, against the level an action needs there."""

    level: int | None
    """The user's power level; None for a creator of a room v12+, who is above every level."""
    needed: int
    """The level the action needs (the bridge's configured requirement)."""
    admin_level: int
    """The level needed to send ``m.room.power_levels``: whoever has it is one of the room's admins."""

    @property
    def allowed(self) -> bool:
        """Whether the user has the level the action needs."""
        return self.level is None or self.level >= self.needed

    @property
    def room_admin(self) -> bool:
        """Whether the user may change the room's power levels (creators of v12+ rooms always may)."""
        return self.level is None or self.level >= self.admin_level

    @property
    def shown_level(self) -> str:
        """The user's level in words, for refusals: ``"0"``, or that they created the room."""
        return "a creator of the room, above every level" if self.level is None else str(self.level)


def power_level_value(value: object, default: int) -> int:
    """A level as the room's state holds it: an integer, or (rooms before v10) a string read as
    the homeserver reads it (Python's ``int()`` in Synapse: ``" 100"`` and ``"+100"`` are 100).
    Reading fewer strings than the homeserver would make a raised requirement look like the
    default, and let through someone the room's own rules would refuse."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def creators_are_privileged(create_content: Mapping[str, object]) -> bool:
    """Whether the room's creators have infinite power (room v12+), from ``m.room.create``'s content.

    A missing ``room_version`` means version 1 (spec); unknown future versions keep v12's rules.
    """
    version = create_content.get("room_version", "1")
    return not (isinstance(version, str) and version in VERSIONS_WITHOUT_PRIVILEGED_CREATORS)


def room_creators(create_event: Mapping[str, object]) -> frozenset[str]:
    """The users ``m.room.create`` names as creators: its ``sender`` (rooms v1-10 also wrote it as
    ``content.creator``) and, in rooms v12+, ``content.additional_creators``.

    ``create_event`` is the whole event; a mapping without ``content`` is taken as the content
    alone (a homeserver that ignored ``format=event``), which names the creator only before v11.
    """
    content = _create_content(create_event)
    creators = {value for value in (create_event.get("sender"), content.get("creator")) if isinstance(value, str)}
    additional = content.get("additional_creators")
    if creators_are_privileged(content) and isinstance(additional, list):
        creators.update(user for user in additional if isinstance(user, str))
    return frozenset(creators)


def state_send_level(power_levels: Mapping[str, object] | None, event_type: str) -> int:
    """The level needed to send the state event ``event_type``: ``events[type]``, else
    ``state_default``, else 50 (also when the room has no ``m.room.power_levels``)."""
    if power_levels is None:
        return STATE_DEFAULT
    state_default = power_level_value(power_levels.get("state_default"), STATE_DEFAULT)
    return power_level_value(_mapping(power_levels.get("events")).get(event_type), state_default)


def room_power(
    power_levels: Mapping[str, object] | None,
    create_event: Mapping[str, object],
    user_id: str,
    *,
    required: int | str = POWER_LEVELS,
) -> RoomPower:
    """``user_id``'s power in a room, from its ``m.room.power_levels`` content (None: the room has
    none) and its whole ``m.room.create`` event.

    ``required`` is what the action needs: a fixed level, or an event type, meaning the level
    needed to send that state event in this room (default: ``m.room.power_levels``).
    """
    needed = required if isinstance(required, int) else state_send_level(power_levels, required)
    admin_level = state_send_level(power_levels, POWER_LEVELS)
    creators = room_creators(create_event)
    if user_id in creators and creators_are_privileged(_create_content(create_event)):
        return RoomPower(level=None, needed=needed, admin_level=admin_level)
    if power_levels is None:
        level = CREATOR_LEVEL_WITHOUT_POWER_LEVELS if user_id in creators else 0
    else:
        users = _mapping(power_levels.get("users"))
        level = power_level_value(users.get(user_id), power_level_value(power_levels.get("users_default"), 0))
    return RoomPower(level=level, needed=needed, admin_level=admin_level)


def _create_content(create_event: Mapping[str, object]) -> Mapping[str, object]:
    content = create_event.get("content")
    return content if isinstance(content, Mapping) else create_event


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


# -- effectful -----------------------------------------------------------------------------------


class RoomStateReader(Protocol):
    """What :func:`read_room_power` needs of the bot's :class:`bridgekit.matrix.Intent`."""

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = ...) -> JSONDict: ...

    async def get_state_event(self, room_id: RoomID, event_type: str, state_key: str = ...) -> JSONDict: ...


async def read_room_power(
    intent: RoomStateReader, room_id: RoomID, user_id: UserID, *, required: int | str = POWER_LEVELS,
) -> RoomPower:
    """``user_id``'s power in ``room_id`` as the room's current state says, read with ``intent``
    (the bridge bot's, which must be in the room). Matrix errors are raised as they come."""
    try:
        power_levels: JSONDict | None = await intent.get_state(room_id, POWER_LEVELS)
    except MatrixNotFound:
        power_levels = None
    create = await intent.get_state_event(room_id, ROOM_CREATE)
    return room_power(power_levels, create, user_id, required=required)


__all__ = [
    "POWER_LEVELS",
    "VERSIONS_WITHOUT_PRIVILEGED_CREATORS",
    "RoomPower",
    "RoomStateReader",
    "creators_are_privileged",
    "power_level_value",
    "read_room_power",
    "room_creators",
    "room_power",
    "state_send_level",
]
