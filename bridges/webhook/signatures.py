"""How an inbound request proves it comes from the hook's owner, and how outbound ones are signed.

Schemes (one per hook):

- ``token``: the secret is part of the URL; only its SHA-256 is stored (it is 32 random bytes,
  so a plain hash cannot be brute-forced).
- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.
- ``slack``: ``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)>`` with
  ``X-Slack-Request-Timestamp: ts``, refused outside the time window (replays).
- ``hmac``: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, ts + "." + body)>`` with
  ``X-Webhook-Timestamp: ts``, mandatory, digits only, window checked. There is no body-only
  form: a request signed over ``ts + "." + body`` and replayed without its timestamp header,
  with ``"<ts>." + body`` as the body, would carry the same MAC. Outbound hooks sign their
  requests the same way, so one bridge's outbound hook can feed another's inbound one.

Timestamps are ASCII digits only (at most 15): ``int()`` would also take ``+``, ``_``, spaces and
other scripts' digits, each a second spelling of one signed string.

Every comparison is constant-time. The functions are pure: the caller passes the clock.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class Scheme(enum.Enum):
    TOKEN = "token"  # noqa: S105 (the scheme's name, not a secret)
    GITHUB = "github"
    SLACK = "slack"
    HMAC = "hmac"

    @property
    def signed(self) -> bool:
        return self is not Scheme.TOKEN


SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
DELIVERY_HEADER = "X-Webhook-Delivery"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused: ``code`` for machines, ``message`` for the sender's admin."""

    code: str
    message: str


def new_token() -> str:
    """A URL-safe secret: 32 random bytes."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return "sha256=" + _hex_hmac(secret, str(timestamp).encode() + b"." + body)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Starlette's headers are case-insensitive already; plain dicts (tests) are not.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def _timestamp_problem(value: str | None, now: float, window: int, header: str) -> Rejection | None:
    if value is None:
        return Rejection("missing_timestamp", f"the {header} header is missing")
    if not _TIMESTAMP.fullmatch(value):
        return Rejection("bad_timestamp", f"{header} must be Unix seconds, in digits only")
    timestamp = int(value)
    if abs(now - timestamp) > window:
        return Rejection(
            "stale_timestamp",
            f"{header} is {int(now - timestamp)} s away from the bridge's clock (at most {window} s allowed): "
            "a replayed request, or a clock to fix",
        )
    return None


@dataclass(frozen=True)
class _Signed:
    """How a signed scheme signs: its headers, and the string its HMAC covers."""

    header: str
    timestamp_header: str | None
    """None: the body alone is signed (GitHub)."""
    prefix: str
    signed: Callable[[bytes, bytes], bytes]
    """(timestamp, body) -> what the HMAC is computed over."""


_SIGNED = {
    Scheme.GITHUB: _Signed("X-Hub-Signature-256", None, "sha256=", lambda _, body: body),
    Scheme.SLACK: _Signed("X-Slack-Signature", "X-Slack-Request-Timestamp", "v0=",
                          lambda timestamp, body: b"v0:" + timestamp + b":" + body),
    Scheme.HMAC: _Signed(SIGNATURE_HEADER, TIMESTAMP_HEADER, "sha256=",
                         lambda timestamp, body: timestamp + b"." + body),
}


def request_digest(scheme: Scheme, headers: Mapping[str, str], body: bytes) -> str | None:
    """What makes a signed request unique, so that it is accepted once. GitHub signs the body
    only, so an identical body is a replay for as long as the idempotency window remembers it;
    Slack and hmac sign their timestamp with the body, so a copy of the pair inside the signature
    window is the same request again. Token hooks: None (the URL is the secret)."""
    if scheme is Scheme.GITHUB:
        return hashlib.sha256(body).hexdigest()
    if scheme is Scheme.TOKEN:
        return None
    timestamp = (_header(headers, _SIGNED[scheme].timestamp_header or "") or "").strip()
    return hashlib.sha256(f"{scheme.value}:{timestamp}.".encode() + body).hexdigest()


def _matches(given: str, expected: str) -> bool:
    # compare_digest refuses str with non-ASCII characters (TypeError), and header values are
    # latin-1 text anyone may send: compare bytes, in constant time.
    return hmac.compare_digest(given.strip().encode("latin-1", "replace"), expected.encode())


def verify(
    scheme: Scheme, secret: str, headers: Mapping[str, str], body: bytes, *, now: float, window: int
) -> Rejection | None:
    """None when the signature of a signed scheme is right, else why not."""
    if scheme is Scheme.TOKEN:
        raise ValueError("token hooks are checked with token_matches, not verify")
    how = _SIGNED[scheme]
    given = _header(headers, how.header)
    if given is None:
        return Rejection("missing_signature", f"the {how.header} header is missing")
    timestamp = _header(headers, how.timestamp_header) if how.timestamp_header else ""
    if how.timestamp_header and (problem := _timestamp_problem(timestamp, now, window, how.timestamp_header)):
        return problem
    if not _matches(given, how.prefix + _hex_hmac(secret, how.signed((timestamp or "").encode(), body))):
        covered = "the request" if how.timestamp_header else "the body"
        return Rejection("bad_signature", f"{how.header} does not match {covered} and the hook's secret")
    return None


__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Rejection",
    "Scheme",
    "hash_token",
    "new_token",
    "request_digest",
    "sign",
    "token_matches",
    "verify",
]
