"""A fake homeserver for unit tests of the bridge's middle layer: the Client-Server API the
appservice uses, answered in memory through ``httpx.MockTransport``.

It answers the calls :mod:`bridgekit.matrix.client` and :mod:`bridgekit.matrix.intent` make the
way Synapse does where a bridge would notice the difference: a resent transaction ID gives back
the first event (and posts nothing new), a user must be registered before the appservice acts as
it, and must be in a room to send, set state, type or mark read there; a private room refuses a
join without an invite; kicks, bans, state and redactions of others' events need power (rooms
are version 12, as Synapse makes them: their creators are above every level); a state
event the room lacks is a 404 ``M_NOT_FOUND``; registering a taken name is ``M_USER_IN_USE``.

Everything the bridge sent is recorded, in order, for the test to read: room events (with the
sender and transaction ID), state, memberships and invites, registrations, profile changes,
typing and read markers. :meth:`FakeHomeserver.fail` makes an endpoint answer with an error a
number of times; :meth:`FakeHomeserver.hold` holds its requests until the test lets them go.

Only for unit tests: the end-to-end tests run against a real Synapse (``tests/servers``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from bridgekit.ids import UserID
from bridgekit.matrix import MatrixClient, MatrixStateMemory
from bridgekit.matrix.retry import RetryPolicy


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


@dataclass
class _Failure:
    times: int
    status: int
    errcode: str
    error: str


@dataclass(frozen=True)
class _Call:
    method: str
    endpoint: str
    segments: tuple[str, ...]
    """The path's segments after the endpoint's fixed prefix, decoded."""
    user_id: str
    query: httpx.QueryParams
    body: Any
    raw: bytes


class FakeHomeserver:
    """The homeserver of ``server_name``, its appservice acting with ``as_token`` as ``bot_user_id``.

    Connect a :class:`~bridgekit.matrix.MatrixClient` with :meth:`matrix_client` (or give
    :attr:`transport` to your own ``httpx.AsyncClient``).
    """

    url = "http://homeserver.test"

    def __init__(
        self, server_name: str = "hs.test", *, bot_localpart: str = "bridgebot", as_token: str = "as-token",  # noqa: S107 - a fake's token
    ) -> None:
        self.server_name = server_name
        self.bot_user_id = UserID(f"@{bot_localpart}:{server_name}")
        self.as_token = as_token
        self.transport = httpx.MockTransport(self._handle)
        self.rooms: dict[str, Room] = {}
        self.users: set[str] = {self.bot_user_id}
        self.events: list[RoomEvent] = []
        """Every room event made through the API, state and memberships included, in order."""
        self.registrations: list[str] = []
        """User IDs the appservice registered, in order."""
        self.profiles: dict[str, dict[str, str]] = {}
        self.profile_changes: list[tuple[str, str, str]] = []
        """(user, "displayname" or "avatar_url", new value), in order."""
        self.typing: list[Typing] = []
        self.receipts: list[Receipt] = []
        self.aliases: dict[str, str] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self.requests: list[Request] = []
        """Every request answered, in order (a held request is listed once answered)."""
        self.held: Counter[str] = Counter()
        """Requests waiting at a :meth:`hold`, by endpoint."""
        self._transactions: dict[tuple[str, str], RoomEvent] = {}
        self._failures: dict[str, _Failure] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._ids = itertools.count(1)

    # -- set-up and control -------------------------------------------------------------------

    def matrix_client(self, http: httpx.AsyncClient, memory: MatrixStateMemory) -> MatrixClient:
        """A client of this homeserver as the appservice. It sends each request once (no
        retries, so no waiting): a failure asked for with :meth:`fail` reaches the caller, whose
        own handling is what a test looks at."""
        return MatrixClient(
            http, homeserver_url=self.url, as_token=self.as_token, bot_user_id=self.bot_user_id,
            memory=memory, retry=RetryPolicy(max_retries=0),
        )

    def add_user(self, user_id: str, displayname: str | None = None) -> None:
        """A user that exists on the homeserver (a person on Matrix, say)."""
        self.users.add(user_id)
        if displayname is not None:
            self.profiles.setdefault(user_id, {})["displayname"] = displayname

    def add_room(self, creator: str, *, public: bool = True, members: tuple[str, ...] = (),
                 power: Mapping[str, int] | None = None, version: str = ROOM_VERSION) -> str:
        """A room made by ``creator``, with ``members`` joined and the power levels in ``power``;
        its ID."""
        self.add_user(creator)
        room = self._new_room(creator, public=public, levels_override={"users": dict(power or {})},
                              version=version)
        for member in members:
            self.add_user(member)
            self._set_membership(room, member, member, "join")
        return room.room_id

    def invite(self, room_id: str, inviter: str, invitee: str, *, is_direct: bool = False) -> str:
        """``inviter`` (a person, not the bridge) invites ``invitee``; the invite's event ID."""
        self._set_membership(self.rooms[room_id], inviter, invitee, "invite", is_direct=is_direct)
        return self.events[-1].event_id

    def fail(self, endpoint: str, *, times: int = 1, status: int = 500, errcode: str = "M_UNKNOWN",
             error: str = "failure asked for by the test") -> None:
        """The next ``times`` requests to ``endpoint`` (``send``, ``join``, ``state``, ...: see
        :data:`ENDPOINTS`) answer ``status`` with ``errcode``."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"no endpoint {endpoint!r}; known: {', '.join(sorted(ENDPOINTS))}")
        self._failures[endpoint] = _Failure(times, status, errcode, error)

    def hold(self, endpoint: str) -> asyncio.Event:
        """Requests to ``endpoint`` wait until the returned event is set."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"no endpoint {endpoint!r}; known: {', '.join(sorted(ENDPOINTS))}")
        gate = self._holds[endpoint] = asyncio.Event()
        return gate

    # -- what the bridge did ------------------------------------------------------------------

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

    # -- the API --------------------------------------------------------------------------------

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        call = self._parse(request)
        if call is None:
            return self._record(request, "?", "", _error(404, "M_UNRECOGNIZED", "Unrecognized request"))
        gate = self._holds.get(call.endpoint)
        if gate is not None and not gate.is_set():
            self.held[call.endpoint] += 1
            try:
                await gate.wait()
            finally:
                self.held[call.endpoint] -= 1
        if request.headers.get("Authorization") != f"Bearer {self.as_token}":
            answer = _error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
        elif (failure := self._failures.get(call.endpoint)) is not None and failure.times > 0:
            failure.times -= 1
            answer = _error(failure.status, failure.errcode, failure.error)
        elif call.user_id not in self.users and call.endpoint not in ("register", "ping"):
            # Synapse: the appservice must register a user before acting as it.
            answer = _error(403, "M_FORBIDDEN", f"Application service has not registered this user ({call.user_id})")
        else:
            answer = _HANDLERS[call.endpoint](self, call)
        return self._record(request, call.endpoint, call.user_id, answer, call.body)

    def _record(self, request: httpx.Request, endpoint: str, user_id: str, answer: httpx.Response,
                body: Any = None) -> httpx.Response:
        self.requests.append(Request(request.method, endpoint, request.url.path, user_id, body, answer.status_code))
        return answer

    def _parse(self, request: httpx.Request) -> _Call | None:
        raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        parts = tuple(unquote(part) for part in raw_path.split("/")[1:])
        user_id = request.url.params.get("user_id") or self.bot_user_id
        body: Any = None
        if request.content and request.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(request.content)
        for (method, prefix, rest), route in _ROUTES.items():
            if method != request.method or parts[: len(prefix)] != prefix:
                continue
            segments = parts[len(prefix):]
            if rest is not None and (len(segments) < rest[0] or len(segments) > rest[1]):
                continue
            endpoint = _room_endpoint(method, segments) if route == "room" else route
            if endpoint is not None:
                return _Call(method, endpoint, segments, user_id, request.url.params, body, request.content)
        return None

    # -- endpoints ------------------------------------------------------------------------------

    def _register(self, call: _Call) -> httpx.Response:
        user_id = f"@{call.body['username']}:{self.server_name}"
        if user_id in self.users:
            return _error(400, "M_USER_IN_USE", "User ID already taken.")
        self.users.add(user_id)
        self.registrations.append(user_id)
        return _ok({"user_id": user_id})

    def _join(self, call: _Call) -> httpx.Response:
        target = call.segments[0]
        room_id = self.aliases.get(target, target)
        room = self.rooms.get(room_id)
        if room is None:
            return _error(404, "M_NOT_FOUND", "No known servers")
        if room.membership(call.user_id) == "ban":
            return _error(403, "M_FORBIDDEN", "You are banned from this room")
        if not room.public and room.membership(call.user_id) not in ("invite", "join"):
            return _error(403, "M_FORBIDDEN", "You are not invited to this room.")
        if room.membership(call.user_id) != "join":
            self._set_membership(room, call.user_id, call.user_id, "join")
        return _ok({"room_id": room_id})

    def _room_action(self, call: _Call) -> httpx.Response:
        room = self.rooms.get(call.segments[0])
        if room is None:
            return _error(404, "M_NOT_FOUND", "Unknown room")
        action = call.endpoint
        if action == "leave":
            if room.membership(call.user_id) not in ("join", "invite"):
                return _error(403, "M_FORBIDDEN", "User is not in the room")
            self._set_membership(room, call.user_id, call.user_id, "leave")
            return _ok({})
        if room.membership(call.user_id) != "join":
            return _error(403, "M_FORBIDDEN", f"User {call.user_id} not in room {room.room_id}")
        target = str(call.body["user_id"])
        if action == "invite":
            if room.membership(target) == "join":
                return _error(403, "M_FORBIDDEN", f"{target} is already in the room.")
            self._set_membership(room, call.user_id, target, "invite")
            return _ok({})
        needed = room.level_needed(action, 50)
        if room.level_of(call.user_id) < needed or room.level_of(call.user_id) <= room.level_of(target):
            return _error(403, "M_FORBIDDEN", f"You don't have permission to {action} this user")
        self._set_membership(room, call.user_id, target, "ban" if action == "ban" else "leave", call.body.get("reason"))
        return _ok({})

    def _send(self, call: _Call) -> httpx.Response:
        room_id, event_type, txn_id = call.segments[0], call.segments[2], call.segments[3]
        problem = self._may_speak(room_id, call.user_id)
        if problem is not None:
            return problem
        earlier = self._transactions.get((call.user_id, txn_id))
        if earlier is not None:  # Synapse: the same transaction by the same user is the same event
            return _ok({"event_id": earlier.event_id})
        ts = call.query.get("ts")
        event = self._add_event(room_id, call.user_id, event_type, dict(call.body or {}), txn_id=txn_id,
                                ts=int(ts) if ts else None)
        self._transactions[(call.user_id, txn_id)] = event
        return _ok({"event_id": event.event_id})

    def _redact(self, call: _Call) -> httpx.Response:
        room_id, target, txn_id = call.segments[0], call.segments[2], call.segments[3]
        problem = self._may_speak(room_id, call.user_id)
        if problem is not None:
            return problem
        earlier = self._transactions.get((call.user_id, txn_id))
        if earlier is not None:
            return _ok({"event_id": earlier.event_id})
        room = self.rooms[room_id]
        try:
            author = self.event(target).sender
        except KeyError:
            author = None
        if author != call.user_id and room.level_of(call.user_id) < room.level_needed("redact", 50):
            return _error(403, "M_FORBIDDEN", "You don't have permission to redact events")
        content = {"redacts": target, **(call.body or {})}
        event = self._add_event(room_id, call.user_id, "m.room.redaction", content, txn_id=txn_id)
        self._transactions[(call.user_id, txn_id)] = event
        return _ok({"event_id": event.event_id})

    def _put_state(self, call: _Call) -> httpx.Response:
        room_id, event_type = call.segments[0], call.segments[2]
        state_key = call.segments[3] if len(call.segments) > 3 else ""
        problem = self._may_speak(room_id, call.user_id)
        if problem is not None:
            return problem
        room = self.rooms[room_id]
        if room.level_of(call.user_id) < room.state_level(event_type):
            return _error(403, "M_FORBIDDEN", f"You don't have permission to post that to the room. "
                                              f"user_level ({room.level_of(call.user_id)}) < send_level "
                                              f"({room.state_level(event_type)})")
        event = self._add_event(room_id, call.user_id, event_type, dict(call.body or {}), state_key=state_key)
        return _ok({"event_id": event.event_id})

    def _get_state(self, call: _Call) -> httpx.Response:
        room = self.rooms.get(call.segments[0])
        if room is None:
            return _error(404, "M_NOT_FOUND", "Unknown room")
        if room.membership(call.user_id) != "join":
            return _error(403, "M_FORBIDDEN", f"User {call.user_id} not in room {room.room_id}")
        state_key = call.segments[3] if len(call.segments) > 3 else ""
        event = room.state.get((call.segments[2], state_key))
        if event is None:
            return _error(404, "M_NOT_FOUND", "Event not found.")
        if call.query.get("format") == "event":
            return _ok({"type": event.type, "state_key": event.state_key, "sender": event.sender,
                        "content": event.content, "event_id": event.event_id, "room_id": event.room_id})
        return _ok(event.content)

    def _get_event(self, call: _Call) -> httpx.Response:
        room = self.rooms.get(call.segments[0])
        found = [event for event in self.events if event.event_id == call.segments[2]]
        if room is None or not found or room.membership(call.user_id) != "join":
            return _error(404, "M_NOT_FOUND", "Event not found.")
        event = found[0]
        return _ok({"type": event.type, "sender": event.sender, "content": event.content,
                    "event_id": event.event_id, "room_id": event.room_id})

    def _typing(self, call: _Call) -> httpx.Response:
        problem = self._may_speak(call.segments[0], call.user_id)
        if problem is not None:
            return problem
        if call.segments[2] != call.user_id:
            return _error(403, "M_FORBIDDEN", "Cannot set another user's typing state")
        typing = bool(call.body.get("typing"))
        timeout = call.body.get("timeout")
        self.typing.append(Typing(call.segments[0], call.user_id, typing, int(timeout) if typing else None))
        return _ok({})

    def _read_markers(self, call: _Call) -> httpx.Response:
        problem = self._may_speak(call.segments[0], call.user_id)
        if problem is not None:
            return problem
        event_id = call.body.get("m.read") or call.body.get("m.read.private")
        if isinstance(event_id, str):
            self.receipts.append(Receipt(call.segments[0], call.user_id, event_id))
        return _ok({})

    def _receipt(self, call: _Call) -> httpx.Response:
        problem = self._may_speak(call.segments[0], call.user_id)
        if problem is not None:
            return problem
        self.receipts.append(Receipt(call.segments[0], call.user_id, call.segments[3]))
        return _ok({})

    def _create_room(self, call: _Call) -> httpx.Response:
        body = call.body or {}
        alias_name = body.get("room_alias_name")
        alias = f"#{alias_name}:{self.server_name}" if alias_name else None
        if alias is not None and alias in self.aliases:
            return _error(400, "M_ROOM_IN_USE", "Room alias already taken")
        room = self._new_room(call.user_id, public=body.get("preset") == "public_chat",
                              levels_override=body.get("power_level_content_override"),
                              version=str(body.get("room_version") or ROOM_VERSION))
        for event_type, content in (("m.room.name", {"name": body.get("name")}),
                                    ("m.room.topic", {"topic": body.get("topic")})):
            if next(iter(content.values())) is not None:
                self._add_event(room.room_id, call.user_id, event_type, content, state_key="")
        for state in body.get("initial_state") or []:
            self._add_event(room.room_id, call.user_id, state["type"], dict(state.get("content") or {}),
                            state_key=state.get("state_key", ""))
        for invitee in body.get("invite") or []:
            self._set_membership(room, call.user_id, invitee, "invite", is_direct=bool(body.get("is_direct")))
        if alias is not None:
            self.aliases[alias] = room.room_id
        return _ok({"room_id": room.room_id})

    def _set_profile(self, call: _Call) -> httpx.Response:
        user, field_name = call.segments[0], call.segments[1]
        if user != call.user_id:
            return _error(403, "M_FORBIDDEN", "Cannot set another user's profile")
        value = str(call.body[field_name])
        self.profiles.setdefault(user, {})[field_name] = value
        self.profile_changes.append((user, field_name, value))
        return _ok({})

    def _get_profile(self, call: _Call) -> httpx.Response:
        user = call.segments[0]
        if user not in self.users:
            return _error(404, "M_NOT_FOUND", "Profile was not found")
        return _ok(dict(self.profiles.get(user, {})))

    def _whoami(self, call: _Call) -> httpx.Response:
        return _ok({"user_id": call.user_id, "is_guest": False})

    def _put_alias(self, call: _Call) -> httpx.Response:
        alias = call.segments[0]
        if alias in self.aliases:
            return _error(409, "M_UNKNOWN", f"Room alias {alias} already exists")
        self.aliases[alias] = str(call.body["room_id"])
        return _ok({})

    def _get_alias(self, call: _Call) -> httpx.Response:
        room_id = self.aliases.get(call.segments[0])
        if room_id is None:
            return _error(404, "M_NOT_FOUND", f"Room alias {call.segments[0]} not found")
        return _ok({"room_id": room_id, "servers": [self.server_name]})

    def _upload(self, call: _Call) -> httpx.Response:
        media_id = f"media{next(self._ids)}"
        self.media[media_id] = (call.raw, "application/octet-stream")
        return _ok({"content_uri": f"mxc://{self.server_name}/{media_id}"})

    def _download(self, call: _Call) -> httpx.Response:
        found = self.media.get(call.segments[1]) if call.segments[0] == self.server_name else None
        if found is None:
            return _error(404, "M_NOT_FOUND", "Not found")
        return httpx.Response(200, content=found[0], headers={"Content-Type": found[1]})

    def _ping(self, call: _Call) -> httpx.Response:
        return _ok({"duration_ms": 1})

    # -- rooms ----------------------------------------------------------------------------------

    def _may_speak(self, room_id: str, user_id: str) -> httpx.Response | None:
        room = self.rooms.get(room_id)
        if room is None:
            return _error(404, "M_NOT_FOUND", "Unknown room")
        if room.membership(user_id) != "join":
            return _error(403, "M_FORBIDDEN", f"User {user_id} not in room {room_id}")
        return None

    def _new_room(self, creator: str, *, public: bool, levels_override: Mapping[str, Any] | None,
                  version: str) -> Room:
        room = Room(f"!room{next(self._ids)}:{self.server_name}", creator, public, version)
        self.rooms[room.room_id] = room
        create: dict[str, Any] = {"room_version": version}
        if version in {str(number) for number in range(1, 11)}:
            create["creator"] = creator  # dropped in room v11
        self._add_event(room.room_id, creator, "m.room.create", create, state_key="")
        self._set_membership(room, creator, creator, "join")
        override = dict(levels_override or {})
        # Synapse lists the creator at 100, except in rooms whose creators are above every level.
        users = {} if room.creators_privileged else {creator: 100}
        users.update(override.pop("users", None) or {})
        levels = {"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
                  "ban": 50, "kick": 50, "redact": 50, "invite": 0, "events": {}, **override}
        self._add_event(room.room_id, creator, "m.room.power_levels", levels, state_key="")
        self._add_event(room.room_id, creator, "m.room.join_rules",
                        {"join_rule": "public" if public else "invite"}, state_key="")
        return room

    def _set_membership(self, room: Room, sender: str, target: str, membership: str, reason: object = None,
                        *, is_direct: bool = False) -> None:
        content: dict[str, Any] = {"membership": membership}
        name = self.profiles.get(target, {}).get("displayname")
        if membership == "join" and name is not None:
            content["displayname"] = name
        if isinstance(reason, str):
            content["reason"] = reason
        if is_direct:
            content["is_direct"] = True
        self._add_event(room.room_id, sender, "m.room.member", content, state_key=target)

    def _add_event(self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
                   txn_id: str | None = None, state_key: str | None = None, ts: int | None = None) -> RoomEvent:
        event = RoomEvent(room_id, sender, event_type, content, f"$event{next(self._ids)}", txn_id, state_key, ts)
        self.events.append(event)
        if state_key is not None:
            self.rooms[room_id].state[(event_type, state_key)] = event
        return event


def _room_endpoint(method: str, segments: tuple[str, ...]) -> str | None:
    """The endpoint of ``/rooms/{room}/...`` from what follows the room ID."""
    if len(segments) < 2:
        return None
    shapes: dict[tuple[str, str], tuple[int, int, str]] = {
        ("PUT", "send"): (4, 4, "send"), ("PUT", "redact"): (4, 4, "redact"),
        ("PUT", "state"): (3, 4, "state"), ("GET", "state"): (3, 4, "get_state"),
        ("GET", "event"): (3, 3, "event"), ("PUT", "typing"): (3, 3, "typing"),
        ("POST", "read_markers"): (2, 2, "read_markers"), ("POST", "receipt"): (4, 5, "receipt"),
        ("POST", "leave"): (2, 2, "leave"), ("POST", "invite"): (2, 2, "invite"),
        ("POST", "kick"): (2, 2, "kick"), ("POST", "ban"): (2, 2, "ban"),
    }
    shape = shapes.get((method, segments[1]))
    if shape is None or not shape[0] <= len(segments) <= shape[1]:
        return None
    return shape[2]


_V3 = ("_matrix", "client", "v3")
_ROUTES: dict[tuple[str, tuple[str, ...], tuple[int, int] | None], str] = {
    ("POST", (*_V3, "register"), (0, 0)): "register",
    ("POST", (*_V3, "join"), (1, 1)): "join",
    ("POST", (*_V3, "createRoom"), (0, 0)): "createRoom",
    ("GET", (*_V3, "account", "whoami"), (0, 0)): "whoami",
    ("PUT", (*_V3, "profile"), (2, 2)): "profile_set",
    ("GET", (*_V3, "profile"), (1, 1)): "profile",
    ("PUT", (*_V3, "directory", "room"), (1, 1)): "alias_set",
    ("GET", (*_V3, "directory", "room"), (1, 1)): "alias",
    ("POST", ("_matrix", "media", "v3", "upload"), (0, 0)): "upload",
    ("GET", ("_matrix", "client", "v1", "media", "download"), (2, 2)): "download",
    ("POST", ("_matrix", "client", "v1", "appservice"), (2, 2)): "ping",
    **{(method, (*_V3, "rooms"), None): "room" for method in ("GET", "PUT", "POST")},
}

_HANDLERS: dict[str, Callable[[FakeHomeserver, _Call], httpx.Response]] = {
    "register": FakeHomeserver._register, "join": FakeHomeserver._join,
    "leave": FakeHomeserver._room_action, "invite": FakeHomeserver._room_action,
    "kick": FakeHomeserver._room_action, "ban": FakeHomeserver._room_action,
    "send": FakeHomeserver._send, "redact": FakeHomeserver._redact,
    "state": FakeHomeserver._put_state, "get_state": FakeHomeserver._get_state, "event": FakeHomeserver._get_event,
    "typing": FakeHomeserver._typing, "read_markers": FakeHomeserver._read_markers,
    "receipt": FakeHomeserver._receipt, "createRoom": FakeHomeserver._create_room,
    "profile_set": FakeHomeserver._set_profile, "profile": FakeHomeserver._get_profile,
    "whoami": FakeHomeserver._whoami, "alias_set": FakeHomeserver._put_alias, "alias": FakeHomeserver._get_alias,
    "upload": FakeHomeserver._upload, "download": FakeHomeserver._download, "ping": FakeHomeserver._ping,
}

ENDPOINTS = frozenset(_HANDLERS)
"""The names :meth:`FakeHomeserver.fail` and :meth:`FakeHomeserver.hold` take."""


def _ok(body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=dict(body))


def _error(status: int, errcode: str, error: str) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": error})


__all__ = ["ENDPOINTS", "FakeHomeserver", "Receipt", "Request", "Room", "RoomEvent", "Typing"]
