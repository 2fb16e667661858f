"""Value objects that cross the framework's boundaries, and the pure checks that build them.

A homeserver transaction carries Client-Server ``ClientEvent`` objects. :func:`parse_client_event`
checks one entry against the envelope the spec fixes (``event_id``, ``type``, ``sender``,
``origin_server_ts``, ``content``, ``room_id``; optional ``state_key`` and ``unsigned``) and either
returns a :class:`MatrixEvent` or says exactly what is wrong, so the inbox can store the entry as
rejected without dropping its neighbours.

Remote events (what connectors ``emit``) wait in the outbox as JSON: :func:`remote_event_to_json`
and :func:`remote_event_from_json` convert them, one table of kinds for every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from bridgekit.ids import ChatID, EventID, MessageID, RemoteUserID, RoomID, UserID

JSONDict = dict[str, Any]

InboxKind = Literal["pdu", "ephemeral", "to_device", "device_lists", "otk_counts", "fallback_keys"]
"""What an inbox row carries: a room event (PDU) or one of the transaction's other sections."""


@dataclass(frozen=True, slots=True)
class MatrixEvent:
    """A room event (PDU) as the homeserver pushed it to the appservice."""

    event_id: EventID
    room_id: RoomID
    sender: UserID
    type: str
    origin_server_ts: int
    content: JSONDict
    state_key: str | None = None
    unsigned: JSONDict = field(default_factory=dict)
    redacts: str | None = None
    """For ``m.room.redaction`` in room versions before 11, where it is a top-level key (from
    v11 on it is in ``content``: use :attr:`redacted_event`)."""

    @property
    def redacted_event(self) -> str | None:
        """The event a redaction redacts, wherever the room version keeps it."""
        in_content = self.content.get("redacts")
        return in_content if isinstance(in_content, str) else self.redacts

    @property
    def is_state(self) -> bool:
        """State events are told apart by the presence of ``state_key`` (spec: TXN-g)."""
        return self.state_key is not None

    def to_json(self) -> JSONDict:
        """The event in its wire form (what :func:`parse_client_event` accepts)."""
        data: JSONDict = {
            "event_id": self.event_id,
            "room_id": self.room_id,
            "sender": self.sender,
            "type": self.type,
            "origin_server_ts": self.origin_server_ts,
            "content": self.content,
        }
        if self.state_key is not None:
            data["state_key"] = self.state_key
        if self.unsigned:
            data["unsigned"] = self.unsigned
        if self.redacts is not None:
            data["redacts"] = self.redacts
        return data


@dataclass(frozen=True, slots=True)
class EphemeralEvent:
    """Typing, receipts, presence (``receive_ephemeral``), or a to-device message."""

    type: str
    content: JSONDict
    room_id: RoomID | None = None
    sender: UserID | None = None
    raw: JSONDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    """A message said on the remote network, for the core to post in its portal.

    ``chat_id`` names the remote chat (its portal), ``message_id`` the message within it: the pair
    is the idempotency key, so emitting the same message twice posts it once.
    """

    chat_id: ChatID
    message_id: MessageID
    sender_id: RemoteUserID
    """The remote user; posted through their ghost."""
    text: str
    html: str | None = None
    msgtype: str = "m.text"
    """m.text, m.notice or m.emote."""
    sender_name: str | None = None
    """The name to show for the sender (the ghost's display name); defaults to ``sender_id``."""
    timestamp_ms: int | None = None
    """When it was said (the Matrix event's timestamp); now when unknown."""
    reply_to: MessageID | None = None
    """The ``message_id`` this message replies to, in the same chat."""
    mentions: tuple[str, ...] = ()
    """Matrix users the message mentions (``m.mentions``, so they are notified): ghosts or the
    Matrix users behind the network's nicks. Pills in ``html`` should point at the same users."""
    sender_avatar_url: str | None = None
    """The sender's picture: an ``mxc://`` URI, or an ``https://`` URL the core fetches (public
    addresses only, images up to 5 MiB) and uploads. Set again only when it changes."""


@dataclass(frozen=True, slots=True)
class RemoteEdit:
    """A remote message was edited: its Matrix event gets an ``m.replace`` edit from the same ghost.

    ``edit_id`` tells edits of the same message apart (the network's edit or revision ID, or a
    timestamp): emitting the same edit twice posts it once.
    """

    chat_id: ChatID
    message_id: MessageID
    """The edited message (a ``RemoteMessage.message_id`` of the same chat)."""
    edit_id: str
    sender_id: RemoteUserID
    text: str
    html: str | None = None
    sender_name: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteDelete:
    """A remote message was deleted: its Matrix event is redacted."""

    chat_id: ChatID
    message_id: MessageID
    sender_id: RemoteUserID
    """Who deleted it (the author, or a moderator of the chat)."""


@dataclass(frozen=True, slots=True)
class RemoteReaction:
    """A remote user reacted to a message (or took the reaction back, with ``removed``)."""

    chat_id: ChatID
    message_id: MessageID
    sender_id: RemoteUserID
    emoji: str
    removed: bool = False
    sender_name: str | None = None
    change_id: str = ""
    """Tells a reaction given again after it was taken back apart from a second delivery of the
    first one (which is dropped): the remote reaction's own ID, a counter or a timestamp."""


@dataclass(frozen=True, slots=True)
class RemoteTyping:
    """A remote user started (or stopped) typing in a chat: their ghost shows it."""

    chat_id: ChatID
    sender_id: RemoteUserID
    typing: bool = True
    timeout_ms: int = 30_000
    """How long the typing notice lasts unless renewed or stopped."""


@dataclass(frozen=True, slots=True)
class RemoteReceipt:
    """A remote user read a chat up to ``message_id``: their ghost's read receipt moves there."""

    chat_id: ChatID
    sender_id: RemoteUserID
    message_id: MessageID


@dataclass(frozen=True, slots=True)
class RemoteMember:
    """Someone joined or left a remote chat, or was kicked or banned from it: their ghost's
    membership in the portal follows."""

    chat_id: ChatID
    sender_id: RemoteUserID
    """Whose membership changed."""
    membership: str
    """``join``, ``leave``, ``kick`` or ``ban``."""
    by: RemoteUserID | None = None
    """Who kicked or banned them (a remote user); None for the bridge bot."""
    reason: str | None = None
    sender_name: str | None = None
    change_id: str = ""
    """Tells repeated changes apart (join, leave, join again): a counter or a timestamp."""


@dataclass(frozen=True, slots=True)
class RemoteChatInfo:
    """The remote chat's name or topic changed (None: unchanged): the portal's follow."""

    chat_id: ChatID
    name: str | None = None
    topic: str | None = None
    changed_by: RemoteUserID | None = None
    """The remote user who changed it (their ghost sets it when it may); None: the bridge bot."""
    change_id: str = ""


@dataclass(frozen=True, slots=True)
class RemotePower:
    """A remote user's standing in a chat changed (an IRC op or voice): their ghost's power level
    in the portal follows. ``level`` is a Matrix power level (0, 50, 100...)."""

    chat_id: ChatID
    sender_id: RemoteUserID
    level: int
    change_id: str = ""
    matrix_user: str | None = None
    """Set when the remote identity is a Matrix user's own (their IRC connection was made an
    operator): the power level goes to that Matrix user instead of a ghost."""


RemoteEvent = (
    RemoteMessage | RemoteEdit | RemoteDelete | RemoteReaction | RemoteTyping | RemoteReceipt | RemoteMember
    | RemoteChatInfo | RemotePower
)
"""What a connector may hand the core with ``ctx.emit``."""

REMOTE_EVENT_KINDS: Mapping[type[RemoteEvent], str] = {
    RemoteMessage: "message", RemoteEdit: "edit", RemoteDelete: "delete", RemoteReaction: "reaction",
    RemoteTyping: "typing", RemoteReceipt: "receipt", RemoteMember: "member", RemoteChatInfo: "chat-info",
    RemotePower: "power",
}
"""The name each remote event type is stored under (``kind`` in its JSON form): stored rows
outlive a release, so these names never change."""

_REMOTE_CLASSES: dict[str, type[RemoteEvent]] = {kind: cls for cls, kind in REMOTE_EVENT_KINDS.items()}
_REMOTE_FIELDS: dict[type[RemoteEvent], tuple[tuple[str, bool], ...]] = {
    cls: tuple((f.name, str(f.type).startswith("tuple")) for f in fields(cls)) for cls in REMOTE_EVENT_KINDS
}
"""Each remote event type's fields, and whether the field is a tuple (JSON gives it back as a
list); worked out once, since every post reads one."""


def remote_event_to_json(event: RemoteEvent) -> JSONDict:
    """The event as a JSON object: its fields, and its ``kind``."""
    kind = REMOTE_EVENT_KINDS.get(type(event))
    if kind is None:
        raise TypeError(f"not one of the Remote* events of bridgekit.events: {event!r}")
    return {"kind": kind, **asdict(event)}


def remote_event_from_json(data: Mapping[str, Any]) -> RemoteEvent:
    """The event :func:`remote_event_to_json` wrote. Keys that are no field are ignored (the outbox
    stores the network beside them); rows from before kinds were stored are messages."""
    kind = data.get("kind", "message")
    cls = _REMOTE_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown remote event kind {kind!r}")
    values: dict[str, Any] = {
        name: tuple(data[name]) if is_tuple and isinstance(data[name], list) else data[name]
        for name, is_tuple in _REMOTE_FIELDS[cls] if name in data
    }
    return cls(**values)


class InvalidEvent(ValueError):
    """An entry of a transaction that is not a valid ClientEvent; the message says why."""


_REQUIRED_STR = ("event_id", "type", "sender", "room_id")


def parse_client_event(entry: object) -> MatrixEvent:
    """Check one transaction entry and return it as a :class:`MatrixEvent`.

    Raises :class:`InvalidEvent` naming the first field that is missing or has the wrong type.
    Unknown extra keys are ignored (forward compatibility, spec TXN-i). The entry's ``content``
    and ``unsigned`` objects are taken over, not copied: the entry comes fresh from the JSON
    decoder and nothing else holds it.
    """
    # Every event of every transaction passes here, so the common case is one flat check
    # (exact types: JSON gives plain dicts, and ``type(x) is int`` also refuses booleans); only
    # an entry that fails it goes through the slower search for what exactly is wrong.
    if type(entry) is dict:
        event_id = entry.get("event_id")
        room_id = entry.get("room_id")
        sender = entry.get("sender")
        event_type = entry.get("type")
        ts = entry.get("origin_server_ts")
        content = entry.get("content")
        state_key = entry.get("state_key")
        unsigned = entry.get("unsigned")
        if (
            type(event_id) is str and event_id
            and type(room_id) is str and room_id
            and type(sender) is str and sender
            and type(event_type) is str and event_type
            and type(ts) is int
            and type(content) is dict
            and (state_key is None or type(state_key) is str)
            and (unsigned is None or type(unsigned) is dict)
        ):
            redacts = entry.get("redacts") if event_type == "m.room.redaction" else None
            return MatrixEvent(
                EventID(event_id), RoomID(room_id), UserID(sender), event_type, ts, content,
                state_key, unsigned if unsigned is not None else {},
                redacts if type(redacts) is str else None,
            )
    raise InvalidEvent(_first_problem(entry))


def _first_problem(entry: object) -> str:
    if not isinstance(entry, Mapping):
        return f"event is a {type(entry).__name__}, not an object"
    for key in _REQUIRED_STR:
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            return _field_problem(key, value, "a non-empty string")
    ts = entry.get("origin_server_ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        return _field_problem("origin_server_ts", ts, "an integer")
    content = entry.get("content")
    if not isinstance(content, Mapping):
        return _field_problem("content", content, "an object")
    state_key = entry.get("state_key")
    if state_key is not None and not isinstance(state_key, str):
        return _field_problem("state_key", state_key, "a string")
    return _field_problem("unsigned", entry.get("unsigned"), "an object")


def parse_ephemeral_event(entry: object) -> EphemeralEvent:
    """Check one ephemeral or to-device entry: an object with a string ``type``."""
    if not isinstance(entry, Mapping):
        raise InvalidEvent(f"ephemeral event is a {type(entry).__name__}, not an object")
    event_type = entry.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent(_field_problem("type", event_type, "a non-empty string"))
    content = entry.get("content", {})
    if not isinstance(content, Mapping):
        raise InvalidEvent(_field_problem("content", content, "an object"))
    room_id = entry.get("room_id")
    sender = entry.get("sender")
    return EphemeralEvent(
        type=event_type,
        content=dict(content),
        room_id=RoomID(room_id) if isinstance(room_id, str) else None,
        sender=UserID(sender) if isinstance(sender, str) else None,
        raw=dict(entry),
    )


def _field_problem(key: str, value: object, expected: str) -> str:
    if value is None:
        return f"'{key}' is missing (expected {expected})"
    return f"'{key}' is {type(value).__name__} {_short(value)}, expected {expected}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "REMOTE_EVENT_KINDS",
    "EphemeralEvent",
    "InboxKind",
    "InvalidEvent",
    "JSONDict",
    "MatrixEvent",
    "RemoteChatInfo",
    "RemoteDelete",
    "RemoteEdit",
    "RemoteEvent",
    "RemoteMember",
    "RemoteMessage",
    "RemotePower",
    "RemoteReaction",
    "RemoteReceipt",
    "RemoteTyping",
    "parse_client_event",
    "parse_ephemeral_event",
    "remote_event_from_json",
    "remote_event_to_json",
]
