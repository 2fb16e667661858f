"""Typed identifiers: the vocabulary every layer shares.

They are ``NewType``s over ``str``, so they cost nothing at run time but keep a room ID from being
passed where a user ID belongs (mypy catches it).
"""

from typing import NewType

UserID = NewType("UserID", str)
"""A Matrix user ID, ``@localpart:server``."""

RoomID = NewType("RoomID", str)
"""A Matrix room ID, ``!opaque:server``."""

RoomAlias = NewType("RoomAlias", str)
"""A Matrix room alias, ``#name:server``."""

EventID = NewType("EventID", str)
"""A Matrix event ID, ``$opaque``."""

ContentURI = NewType("ContentURI", str)
"""A Matrix content URI, ``mxc://server/media_id``."""

TransactionID = NewType("TransactionID", str)
"""A homeserver -> appservice transaction ID (opaque, chosen by the homeserver)."""

ChatID = NewType("ChatID", str)
"""A chat on the remote network, as its connector names it (a channel, a group, a DM): the key
of its portal."""

MessageID = NewType("MessageID", str)
"""A message on the remote network, as its connector names it, unique within its chat."""

RemoteUserID = NewType("RemoteUserID", str)
"""A user on the remote network, as its connector names them: the key of their ghost."""

__all__ = [
    "ChatID",
    "ContentURI",
    "EventID",
    "MessageID",
    "RemoteUserID",
    "RoomAlias",
    "RoomID",
    "TransactionID",
    "UserID",
]
