"""The fake homeserver's endpoints: which request is which (:func:`parse`), and how each is
answered, the way Synapse answers it where a bridge would notice (see :mod:`bridgekit.testing.fake_homeserver`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx

from bridgekit.testing.fake_rooms import ROOM_VERSION, Receipt, Typing

if TYPE_CHECKING:
    from bridgekit.testing.fake_homeserver import FakeHomeserver


@dataclass(frozen=True)
class Call:
    """One request, as the endpoint handlers see it."""

    method: str
    endpoint: str
    segments: tuple[str, ...]
    """The path's segments after the endpoint's fixed prefix, decoded."""
    user_id: str
    query: httpx.QueryParams
    body: Any
    raw: bytes


def parse(request: httpx.Request, bot_user_id: str) -> Call | None:
    """The endpoint and arguments of ``request``; None for a request the fake does not serve."""
    raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
    parts = tuple(unquote(part) for part in raw_path.split("/")[1:])
    user_id = request.url.params.get("user_id") or bot_user_id
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
            return Call(method, endpoint, segments, user_id, request.url.params, body, request.content)
    return None


def register(hs: FakeHomeserver, call: Call) -> httpx.Response:
    user_id = f"@{call.body['username']}:{hs.server_name}"
    if user_id in hs.users:
        return error(400, "M_USER_IN_USE", "User ID already taken.")
    hs.users.add(user_id)
    hs.registrations.append(user_id)
    return ok({"user_id": user_id})


def join(hs: FakeHomeserver, call: Call) -> httpx.Response:
    target = call.segments[0]
    room_id = hs.aliases.get(target, target)
    room = hs.rooms.get(room_id)
    if room is None:
        return error(404, "M_NOT_FOUND", "No known servers")
    if room.membership(call.user_id) == "ban":
        return error(403, "M_FORBIDDEN", "You are banned from this room")
    if not room.public and room.membership(call.user_id) not in ("invite", "join"):
        return error(403, "M_FORBIDDEN", "You are not invited to this room.")
    if room.membership(call.user_id) != "join":
        hs.set_membership(room, call.user_id, call.user_id, "join")
    return ok({"room_id": room_id})


def room_action(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room = hs.rooms.get(call.segments[0])
    if room is None:
        return error(404, "M_NOT_FOUND", "Unknown room")
    action = call.endpoint
    if action == "leave":
        if room.membership(call.user_id) not in ("join", "invite"):
            return error(403, "M_FORBIDDEN", "User is not in the room")
        hs.set_membership(room, call.user_id, call.user_id, "leave")
        return ok({})
    if room.membership(call.user_id) != "join":
        return error(403, "M_FORBIDDEN", f"User {call.user_id} not in room {room.room_id}")
    target = str(call.body["user_id"])
    if action == "invite":
        if room.membership(target) == "join":
            return error(403, "M_FORBIDDEN", f"{target} is already in the room.")
        hs.set_membership(room, call.user_id, target, "invite")
        return ok({})
    needed = room.level_needed(action, 50)
    if room.level_of(call.user_id) < needed or room.level_of(call.user_id) <= room.level_of(target):
        return error(403, "M_FORBIDDEN", f"You don't have permission to {action} this user")
    hs.set_membership(room, call.user_id, target, "ban" if action == "ban" else "leave", call.body.get("reason"))
    return ok({})


def send(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room_id, event_type, txn_id = call.segments[0], call.segments[2], call.segments[3]
    problem = may_speak(hs, room_id, call.user_id)
    if problem is not None:
        return problem
    earlier = hs.transactions.get((call.user_id, txn_id))
    if earlier is not None:  # Synapse: the same transaction by the same user is the same event
        return ok({"event_id": earlier.event_id})
    ts = call.query.get("ts")
    event = hs.add_event(room_id, call.user_id, event_type, dict(call.body or {}), txn_id=txn_id,
                         ts=int(ts) if ts else None)
    hs.transactions[(call.user_id, txn_id)] = event
    return ok({"event_id": event.event_id})


def redact(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room_id, target, txn_id = call.segments[0], call.segments[2], call.segments[3]
    problem = may_speak(hs, room_id, call.user_id)
    if problem is not None:
        return problem
    earlier = hs.transactions.get((call.user_id, txn_id))
    if earlier is not None:
        return ok({"event_id": earlier.event_id})
    room = hs.rooms[room_id]
    try:
        author = hs.event(target).sender
    except KeyError:
        author = None
    if author != call.user_id and room.level_of(call.user_id) < room.level_needed("redact", 50):
        return error(403, "M_FORBIDDEN", "You don't have permission to redact events")
    content = {"redacts": target, **(call.body or {})}
    event = hs.add_event(room_id, call.user_id, "m.room.redaction", content, txn_id=txn_id)
    hs.transactions[(call.user_id, txn_id)] = event
    return ok({"event_id": event.event_id})


def put_state(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room_id, event_type = call.segments[0], call.segments[2]
    state_key = call.segments[3] if len(call.segments) > 3 else ""
    problem = may_speak(hs, room_id, call.user_id)
    if problem is not None:
        return problem
    room = hs.rooms[room_id]
    if room.level_of(call.user_id) < room.state_level(event_type):
        return error(403, "M_FORBIDDEN", f"You don't have permission to post that to the room. "
                                          f"user_level ({room.level_of(call.user_id)}) < send_level "
                                          f"({room.state_level(event_type)})")
    event = hs.add_event(room_id, call.user_id, event_type, dict(call.body or {}), state_key=state_key)
    return ok({"event_id": event.event_id})


def get_state(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room = hs.rooms.get(call.segments[0])
    if room is None:
        return error(404, "M_NOT_FOUND", "Unknown room")
    if room.membership(call.user_id) != "join":
        return error(403, "M_FORBIDDEN", f"User {call.user_id} not in room {room.room_id}")
    state_key = call.segments[3] if len(call.segments) > 3 else ""
    event = room.state.get((call.segments[2], state_key))
    if event is None:
        return error(404, "M_NOT_FOUND", "Event not found.")
    if call.query.get("format") == "event":
        return ok({"type": event.type, "state_key": event.state_key, "sender": event.sender,
                    "content": event.content, "event_id": event.event_id, "room_id": event.room_id})
    return ok(event.content)


def get_event(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room = hs.rooms.get(call.segments[0])
    found = [event for event in hs.events if event.event_id == call.segments[2]]
    if room is None or not found or room.membership(call.user_id) != "join":
        return error(404, "M_NOT_FOUND", "Event not found.")
    event = found[0]
    return ok({"type": event.type, "sender": event.sender, "content": event.content,
                "event_id": event.event_id, "room_id": event.room_id})


def typing(hs: FakeHomeserver, call: Call) -> httpx.Response:
    problem = may_speak(hs, call.segments[0], call.user_id)
    if problem is not None:
        return problem
    if call.segments[2] != call.user_id:
        return error(403, "M_FORBIDDEN", "Cannot set another user's typing state")
    on = bool(call.body.get("typing"))
    timeout = call.body.get("timeout")
    hs.typing.append(Typing(call.segments[0], call.user_id, on, int(timeout) if on else None))
    return ok({})


def read_markers(hs: FakeHomeserver, call: Call) -> httpx.Response:
    problem = may_speak(hs, call.segments[0], call.user_id)
    if problem is not None:
        return problem
    event_id = call.body.get("m.read") or call.body.get("m.read.private")
    if isinstance(event_id, str):
        hs.receipts.append(Receipt(call.segments[0], call.user_id, event_id))
    return ok({})


def receipt(hs: FakeHomeserver, call: Call) -> httpx.Response:
    problem = may_speak(hs, call.segments[0], call.user_id)
    if problem is not None:
        return problem
    hs.receipts.append(Receipt(call.segments[0], call.user_id, call.segments[3]))
    return ok({})


def create_room(hs: FakeHomeserver, call: Call) -> httpx.Response:
    body = call.body or {}
    alias_name = body.get("room_alias_name")
    alias = f"#{alias_name}:{hs.server_name}" if alias_name else None
    if alias is not None and alias in hs.aliases:
        return error(400, "M_ROOM_IN_USE", "Room alias already taken")
    room = hs.new_room(call.user_id, public=body.get("preset") == "public_chat",
                       levels_override=body.get("power_level_content_override"),
                       version=str(body.get("room_version") or ROOM_VERSION))
    for event_type, content in (("m.room.name", {"name": body.get("name")}),
                                ("m.room.topic", {"topic": body.get("topic")})):
        if next(iter(content.values())) is not None:
            hs.add_event(room.room_id, call.user_id, event_type, content, state_key="")
    for state in body.get("initial_state") or []:
        hs.add_event(room.room_id, call.user_id, state["type"], dict(state.get("content") or {}),
                     state_key=state.get("state_key", ""))
    for invitee in body.get("invite") or []:
        hs.set_membership(room, call.user_id, invitee, "invite", is_direct=bool(body.get("is_direct")))
    if alias is not None:
        hs.aliases[alias] = room.room_id
    return ok({"room_id": room.room_id})


def set_profile(hs: FakeHomeserver, call: Call) -> httpx.Response:
    user, field_name = call.segments[0], call.segments[1]
    if user != call.user_id:
        return error(403, "M_FORBIDDEN", "Cannot set another user's profile")
    value = str(call.body[field_name])
    hs.profiles.setdefault(user, {})[field_name] = value
    hs.profile_changes.append((user, field_name, value))
    return ok({})


def get_profile(hs: FakeHomeserver, call: Call) -> httpx.Response:
    user = call.segments[0]
    if user not in hs.users:
        return error(404, "M_NOT_FOUND", "Profile was not found")
    return ok(dict(hs.profiles.get(user, {})))


def whoami(hs: FakeHomeserver, call: Call) -> httpx.Response:
    return ok({"user_id": call.user_id, "is_guest": False})


def put_alias(hs: FakeHomeserver, call: Call) -> httpx.Response:
    alias = call.segments[0]
    if alias in hs.aliases:
        return error(409, "M_UNKNOWN", f"Room alias {alias} already exists")
    hs.aliases[alias] = str(call.body["room_id"])
    return ok({})


def get_alias(hs: FakeHomeserver, call: Call) -> httpx.Response:
    room_id = hs.aliases.get(call.segments[0])
    if room_id is None:
        return error(404, "M_NOT_FOUND", f"Room alias {call.segments[0]} not found")
    return ok({"room_id": room_id, "servers": [hs.server_name]})


def upload(hs: FakeHomeserver, call: Call) -> httpx.Response:
    media_id = f"media{hs.next_id()}"
    hs.media[media_id] = (call.raw, "application/octet-stream")
    return ok({"content_uri": f"mxc://{hs.server_name}/{media_id}"})


def download(hs: FakeHomeserver, call: Call) -> httpx.Response:
    found = hs.media.get(call.segments[1]) if call.segments[0] == hs.server_name else None
    if found is None:
        return error(404, "M_NOT_FOUND", "Not found")
    return httpx.Response(200, content=found[0], headers={"Content-Type": found[1]})


def ping(hs: FakeHomeserver, call: Call) -> httpx.Response:
    return ok({"duration_ms": 1})


def may_speak(hs: FakeHomeserver, room_id: str, user_id: str) -> httpx.Response | None:
    room = hs.rooms.get(room_id)
    if room is None:
        return error(404, "M_NOT_FOUND", "Unknown room")
    if room.membership(user_id) != "join":
        return error(403, "M_FORBIDDEN", f"User {user_id} not in room {room_id}")
    return None


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

HANDLERS: dict[str, Callable[[FakeHomeserver, Call], httpx.Response]] = {
    "register": register, "join": join,
    "leave": room_action, "invite": room_action,
    "kick": room_action, "ban": room_action,
    "send": send, "redact": redact,
    "state": put_state, "get_state": get_state, "event": get_event,
    "typing": typing, "read_markers": read_markers,
    "receipt": receipt, "createRoom": create_room,
    "profile_set": set_profile, "profile": get_profile,
    "whoami": whoami, "alias_set": put_alias, "alias": get_alias,
    "upload": upload, "download": download, "ping": ping,
}

ENDPOINTS = frozenset(HANDLERS)
"""The names :meth:`FakeHomeserver.fail` and :meth:`FakeHomeserver.hold` take."""


def ok(body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=dict(body))


def error(status: int, errcode: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": message})


__all__ = ["ENDPOINTS", "HANDLERS", "Call", "error", "ok", "parse"]
