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
from collections.abc import Mapping
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


def request_digest(scheme: Scheme, headers: Mapping[str, str], body: bytes) -> str | None:
    """What makes a signed request unique, so that it is accepted once. GitHub signs the body
    only, so an identical body is a replay for as long as the idempotency window remembers it;
    Slack and hmac sign their timestamp with the body, so a copy of the pair inside the signature
    window is the same request again. Token hooks: None (the URL is the secret)."""
    if scheme is Scheme.GITHUB:
        return hashlib.sha256(body).hexdigest()
    header = {Scheme.SLACK: "X-Slack-Request-Timestamp", Scheme.HMAC: TIMESTAMP_HEADER}.get(scheme)
    if header is None:
        return None
    timestamp = (_header(headers, header) or "").strip()
    return hashlib.sha256(f"{scheme.value}:{timestamp}.".encode() + body).hexdigest()


def _matches(given: str, expected: str) -> bool:
    # compare_digest refuses str with non-ASCII characters (TypeError), and header values are
    # latin-1 text anyone may send: compare bytes, in constant time.
    return hmac.compare_digest(given.strip().encode("latin-1", "replace"), expected.encode())


def verify_github(secret: str, headers: Mapping[str, str], body: bytes) -> Rejection | None:
    given = _header(headers, "X-Hub-Signature-256")
    if given is None:
        return Rejection("missing_signature", "the X-Hub-Signature-256 header is missing")
    if not _matches(given, "sha256=" + _hex_hmac(secret, body)):
        return Rejection("bad_signature", "X-Hub-Signature-256 does not match the body and the hook's secret")
    return None


def verify_slack(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, window: int) -> Rejection | None:
    given = _header(headers, "X-Slack-Signature")
    if given is None:
        return Rejection("missing_signature", "the X-Slack-Signature header is missing")
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    problem = _timestamp_problem(timestamp, now, window, "X-Slack-Request-Timestamp")
    if problem is not None:
        return problem
    expected = "v0=" + _hex_hmac(secret, b"v0:" + str(timestamp).encode() + b":" + body)
    if not _matches(given, expected):
        return Rejection("bad_signature", "X-Slack-Signature does not match the request and the hook's secret")
    return None


def verify_hmac(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, window: int) -> Rejection | None:
    given = _header(headers, SIGNATURE_HEADER)
    if given is None:
        return Rejection("missing_signature", f"the {SIGNATURE_HEADER} header is missing")
    timestamp = _header(headers, TIMESTAMP_HEADER)
    problem = _timestamp_problem(timestamp, now, window, TIMESTAMP_HEADER)
    if problem is not None or timestamp is None:
        return problem
    expected = "sha256=" + _hex_hmac(secret, timestamp.encode() + b"." + body)
    if not _matches(given, expected):
        return Rejection("bad_signature", f"{SIGNATURE_HEADER} does not match the request and the hook's secret")
    return None


def verify(
    scheme: Scheme, secret: str, headers: Mapping[str, str], body: bytes, *, now: float, window: int
) -> Rejection | None:
    """None when the signature of a signed scheme is right, else why not."""
    if scheme is Scheme.GITHUB:
        return verify_github(secret, headers, body)
    if scheme is Scheme.SLACK:
        return verify_slack(secret, headers, body, now=now, window=window)
    if scheme is Scheme.HMAC:
        return verify_hmac(secret, headers, body, now=now, window=window)
    raise ValueError("token hooks are checked with token_matches, not verify")


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
    "verify_github",
    "verify_hmac",
    "verify_slack",
]
