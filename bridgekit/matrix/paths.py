"""Building request paths, transaction IDs and media references: pure string work.

Every identifier that goes into a path is percent-encoded whole (``quote(x, safe="")``): room IDs
contain ``!`` and ``:``, aliases ``#``, event IDs may contain ``/`` and ``+``, and a bridge's
transaction IDs come from remote networks, so nothing may be left to mean a path separator.
"""

from __future__ import annotations

import base64
import hashlib
import re
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


_PARAMETERS_AFTER: dict[str, tuple[str, ...]] = {
    "rooms": ("roomId",),
    "send": ("eventType", "txnId"),
    "state": ("eventType", "stateKey"),
    "redact": ("eventId", "txnId"),
    "event": ("eventId",),
    "context": ("eventId",),
    "relations": ("eventId", "relType", "eventType"),
    "receipt": ("receiptType", "eventId"),
    "typing": ("userId",),
    "join": ("roomIdOrAlias",),
    "profile": ("userId",),
    "user": ("userId",),
    "account_data": ("type",),
    "appservice": ("appserviceId",),
    "download": ("serverName", "mediaId", "fileName"),
    "thumbnail": ("serverName", "mediaId"),
    "room": ("roomAlias",),
}
"""Where a Matrix path has parameters: the segments after these words (CS API spec)."""

_SIGILS = {"%21": "{roomId}", "%40": "{userId}", "%23": "{roomAlias}", "%24": "{eventId}"}
_WORD = re.compile(r"[a-z][a-zA-Z0-9_]{0,31}")
"""A path word of the spec (``rooms``, ``createRoom``, ``read_markers``); a transaction ID, an event
type (dots) or anything percent-encoded is not one."""


def endpoint_template(request_path: str) -> str:
    """The spec's template of a request path, for metrics: every identifier replaced by its
    name (``/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}``), so the number of
    distinct values stays small whatever rooms and users pass through. A segment that is not a
    known word or parameter becomes ``{param}``."""
    segments = request_path.split("?", 1)[0].split("/")
    out: list[str] = []
    expected: tuple[str, ...] = ()
    for segment in segments:
        if expected:
            out.append("{" + expected[0] + "}")
            expected = expected[1:]
            continue
        if not segment or segment.startswith("_matrix") or _WORD.fullmatch(segment):
            out.append(segment)
            expected = _PARAMETERS_AFTER.get(segment, ())
            continue
        out.append(_SIGILS.get(segment[:3].lower(), "{param}"))
    return "/".join(out)


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
    "endpoint_template",
    "localpart",
    "path",
    "random_txn_id",
    "split_content_uri",
    "txn_id_for",
]
