"""The rooms of :class:`~bridgekit.testing.FakeHomeserver` and the record of what was done in
them: the events, their state, memberships and power levels, as Synapse keeps them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One event the bridge made in a room (a message, reaction, redaction or state change)."""

    room_id: str
    sender: str
    type: str
    content: dict[str, Any]
    event_id: str
    txn_id: str | None = None
    """The transaction ID it was sent with (None for state events and memberships)."""
    state_key: str | None = None
    ts: int | None = None
    """The timestamp the appservice asked for (``?ts=``), if any."""

    @property
    def body(self) -> str | None:
        body = self.content.get("body")
        return body if isinstance(body, str) else None


@dataclass(frozen=True, slots=True)
class Typing:
    room_id: str
    user_id: str
    typing: bool
    timeout_ms: int | None


@dataclass(frozen=True, slots=True)
class Receipt:
    room_id: str
    user_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the homeserver saw it: who it acted as, and the answer's status."""

    method: str
    endpoint: str
    path: str
    user_id: str
    body: Any
    status: int


ROOM_VERSION = "12"
"""The version of new rooms, as Synapse's default (1.163): its creators are above every power
level (MSC4289) and are not listed in ``m.room.power_levels``."""

_CREATOR_LEVEL = 2**53
"""The level a creator of a room v12+ acts with: above any a power-levels event can give."""


@dataclass
class Room:
    room_id: str
    creator: str
    public: bool
    version: str = ROOM_VERSION
    state: dict[tuple[str, str], RoomEvent] = field(default_factory=dict)

    @property
    def creators_privileged(self) -> bool:
        return self.version not in {str(number) for number in range(1, 12)}

    def membership(self, user_id: str) -> str | None:
        event = self.state.get(("m.room.member", user_id))
        membership = event.content.get("membership") if event is not None else None
        return membership if isinstance(membership, str) else None

    def level_of(self, user_id: str) -> int:
        if self.creators_privileged and user_id == self.creator:
            return _CREATOR_LEVEL
        levels = self.power_levels()
        users = levels.get("users") or {}
        return int(users.get(user_id, levels.get("users_default", 0)))

    def level_needed(self, key: str, default: int) -> int:
        return int(self.power_levels().get(key, default))

    def state_level(self, event_type: str) -> int:
        levels = self.power_levels()
        return int((levels.get("events") or {}).get(event_type, levels.get("state_default", 50)))

    def power_levels(self) -> dict[str, Any]:
        event = self.state.get(("m.room.power_levels", ""))
        return event.content if event is not None else {}


class RoomLedger:
    """Rooms and every event made in them, in order; the readers a test asks what happened."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self.rooms: dict[str, Room] = {}
        self.events: list[RoomEvent] = []
        """Every room event made through the API, state and memberships included, in order."""
        self.profiles: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def messages(self, room_id: str | None = None, *, sender: str | None = None,
                 event_type: str = "m.room.message") -> list[RoomEvent]:
        """Non-state events of ``event_type`` (messages by default) in the order they were made."""
        return [
            event for event in self.events
            if event.state_key is None and event.type == event_type
            and (room_id is None or event.room_id == room_id) and (sender is None or event.sender == sender)
        ]

    def bodies(self, room_id: str | None = None, *, sender: str | None = None) -> list[str]:
        return [event.body for event in self.messages(room_id, sender=sender) if event.body is not None]

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        """The current content of a state event (None when the room has none)."""
        event = self.rooms[room_id].state.get((event_type, state_key))
        return event.content if event is not None else None

    def membership(self, room_id: str, user_id: str) -> str | None:
        return self.rooms[room_id].membership(user_id)

    def members(self, room_id: str) -> list[str]:
        room = self.rooms[room_id]
        return sorted(key for (kind, key) in room.state if kind == "m.room.member" and room.membership(key) == "join")

    def invites(self, room_id: str | None = None) -> list[tuple[str, str, str]]:
        """(room, inviter, invitee) of every invite, in order."""
        return [
            (event.room_id, event.sender, event.state_key or "") for event in self.events
            if event.type == "m.room.member" and event.content.get("membership") == "invite"
            and (room_id is None or event.room_id == room_id)
        ]

    def event(self, event_id: str) -> RoomEvent:
        for event in self.events:
            if event.event_id == event_id:
                return event
        raise KeyError(event_id)

    # -- changes -------------------------------------------------------------------------------

    def new_room(self, creator: str, *, public: bool, levels_override: Mapping[str, Any] | None,
                 version: str) -> Room:
        """A room as Synapse makes it: created, its creator joined, power levels, join rules."""
        room = Room(f"!room{self.next_id()}:{self.server_name}", creator, public, version)
        self.rooms[room.room_id] = room
        create: dict[str, Any] = {"room_version": version}
        if version in {str(number) for number in range(1, 11)}:
            create["creator"] = creator  # dropped in room v11
        self.add_event(room.room_id, creator, "m.room.create", create, state_key="")
        self.set_membership(room, creator, creator, "join")
        override = dict(levels_override or {})
        # Synapse lists the creator at 100, except in rooms whose creators are above every level.
        users = {} if room.creators_privileged else {creator: 100}
        users.update(override.pop("users", None) or {})
        levels = {"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
                  "ban": 50, "kick": 50, "redact": 50, "invite": 0, "events": {}, **override}
        self.add_event(room.room_id, creator, "m.room.power_levels", levels, state_key="")
        self.add_event(room.room_id, creator, "m.room.join_rules",
                       {"join_rule": "public" if public else "invite"}, state_key="")
        return room

    def set_membership(self, room: Room, sender: str, target: str, membership: str, reason: object = None,
                       *, is_direct: bool = False) -> None:
        """``sender`` changes ``target``'s membership (joins carry the user's display name)."""
        content: dict[str, Any] = {"membership": membership}
        name = self.profiles.get(target, {}).get("displayname")
        if membership == "join" and name is not None:
            content["displayname"] = name
        if isinstance(reason, str):
            content["reason"] = reason
        if is_direct:
            content["is_direct"] = True
        self.add_event(room.room_id, sender, "m.room.member", content, state_key=target)

    def add_event(self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
                  txn_id: str | None = None, state_key: str | None = None, ts: int | None = None) -> RoomEvent:
        """Record an event (and, for a state event, make it the room's current state)."""
        event = RoomEvent(room_id, sender, event_type, content, f"$event{self.next_id()}", txn_id, state_key, ts)
        self.events.append(event)
        if state_key is not None:
            self.rooms[room_id].state[(event_type, state_key)] = event
        return event


__all__ = ["ROOM_VERSION", "Receipt", "Request", "Room", "RoomEvent", "RoomLedger", "Typing"]
