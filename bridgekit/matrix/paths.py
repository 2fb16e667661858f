"""Building request paths, transaction IDs and media references: pure string work.

Every identifier that goes into a path is percent-encoded whole (``quote(x, safe="")``): room IDs
contain ``!`` and ``:``, aliases ``#``, event IDs may contain ``/`` and ``+``, and a bridge's
transaction IDs come from remote networks, so nothing may be left to mean a path separator.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import quote

from bridgekit.ids import ContentURI

CLIENT_V3 = "/_matrix/client/v3"
CLIENT_V1 = "/_matrix/client/v1"
MEDIA_V3 = "/_matrix/media/v3"

_TXN_PREFIX = "bk1."
"""Versions the derivation: changing the hash later must not reuse the old IDs' space."""


def path(prefix: str, *segments: str) -> str:
    """``prefix`` followed by each segment, percent-encoded, joined with ``/``."""
    return "/".join([prefix, *(quote(segment, safe="") for segment in segments)])


def txn_id_for(idempotency_key: str) -> str:
    """The transaction ID for an idempotency key: the same key always gives the same ID.

    A stable hash, so any string (a remote network's message ID of any length or alphabet) gives
    a short ID made of URL-safe characters, and retries after a crash reuse it: the homeserver
    then answers with the event it already created instead of creating a second one.
    """
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).digest()[:18]
    return _TXN_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii")


def random_txn_id() -> str:
    """A fresh transaction ID for a send without an idempotency key (chosen once per send)."""
    return "bkr." + secrets.token_urlsafe(18)


def split_content_uri(uri: ContentURI | str) -> tuple[str, str]:
    """``mxc://server/media_id`` -> ``(server, media_id)``; ValueError when it is not one."""
    scheme, _, rest = uri.partition("://")
    server, _, media_id = rest.partition("/")
    if scheme != "mxc" or not server or not media_id or "/" in media_id:
        raise ValueError(f"{uri!r} is not a Matrix content URI (expected mxc://server/media_id)")
    return server, media_id


def localpart(user_id: str) -> str:
    """``@name:server`` -> ``name``; ValueError when it is not a user ID."""
    if not user_id.startswith("@") or ":" not in user_id:
        raise ValueError(f"{user_id!r} is not a Matrix user ID (expected @localpart:server)")
    return user_id[1:].partition(":")[0]


__all__ = [
    "CLIENT_V1",
    "CLIENT_V3",
    "MEDIA_V3",
    "localpart",
    "path",
    "random_txn_id",
    "split_content_uri",
    "txn_id_for",
]
