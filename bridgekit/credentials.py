"""Remote-network credentials encrypted at rest (DESIGN §4), and the key that encrypts them.

A :class:`CredentialCipher` turns a login's credentials (a JSON mapping) into text for the
``remote_session.credentials`` column and back. The key comes from the environment or the config
(:func:`load_key`); older keys stay usable for reading while rows are re-encrypted (:meth:`rotate`).

A stored value looks like ``v1:<key id>:<Fernet token>``. The version tag lets the format change
later; the key id (a one-way fingerprint of the key, never the key) says which key wrote the row,
so a row written with a key the bridge lacks is told apart from a damaged one, and rotation needs
no trial decryption. Errors never contain a key or the credentials::

    BridgekitError
    ├── ConfigError                   the key is missing or malformed (names where it came from)
    └── CredentialError               stored credentials cannot be read
        ├── UnknownCredentialKey        written with a key this bridge does not have
        ├── CorruptCredentials          damaged, truncated or altered since it was written
        └── CredentialContextMismatch   belongs to another record (copied between rows)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bridgekit.errors import BridgekitError, ConfigError

# The names of the variables that hold the key, not keys.
KEY_ENV = "BRIDGEKIT_CREDENTIALS_KEY"
KEY_FILE_ENV = "BRIDGEKIT_CREDENTIALS_KEY_FILE"

_VERSION = "v1"
_KEY_ID_LABEL = b"bridgekit credentials key id v1"
_KEY_BYTES = 32
_GENERATE_HINT = "generate one with: bridgekit generate-key"
_KEY_SHAPE = f"a key is {_KEY_BYTES} random bytes in URL-safe base64 (44 characters, ending in '=')"


class CredentialError(BridgekitError):
    """Stored credentials cannot be read; the user has to log in again or the admin fix the key."""


class UnknownCredentialKey(CredentialError):
    """The credentials were encrypted with a key this bridge does not have."""

    def __init__(self, key_id: str, known: Sequence[str]) -> None:
        self.key_id = key_id
        super().__init__(
            f"the credentials were encrypted with a key this bridge does not have (key id {key_id}; "
            f"this bridge has {', '.join(known)}): set {KEY_ENV} to the key used before, "
            "or list it as a previous key"
        )


class CorruptCredentials(CredentialError):
    """The stored value is damaged, truncated or was altered after it was written."""


class CredentialContextMismatch(CredentialError):
    """The credentials were encrypted for another record (a row's value copied into another row)."""

    def __init__(self, expected: str | None) -> None:
        self.expected = expected
        if expected is None:
            super().__init__("the stored credentials are bound to a record, and none was named to read them")
            return
        super().__init__(
            f"the stored credentials were encrypted for another record than {expected!r} and are refused: "
            "they may have been copied from another row; log in again to store fresh ones"
        )


def generate_key() -> str:
    """A new random key, in the form :func:`load_key` and :class:`CredentialCipher` accept."""
    from cryptography.fernet import Fernet  # imported when used: 7 MB a bridge without logins never needs

    return Fernet.generate_key().decode("ascii")


def key_id(key: str) -> str:
    """The key's public fingerprint (8 hex digits), as error messages and stored values name it."""
    return _key_id(_decode_key(key, where="the credentials key"))


def key_bytes(key: str) -> bytes:
    """The key's 32 bytes, to derive other keys from (``bridgekit/signing.py``)."""
    return _decode_key(key, where="the credentials key")


def load_key(*, configured: str | None, environ: Mapping[str, str]) -> str:
    """The credentials key: ``BRIDGEKIT_CREDENTIALS_KEY``, else the file ``..._KEY_FILE`` names,
    else the configured value. Blank values count as unset. Raises :class:`ConfigError` with the fix.
    """
    key, where = _find_key(configured, environ)
    # Returned in canonical form, checked here so the error names where the bad key came from.
    return base64.urlsafe_b64encode(_decode_key(key, where=where)).decode("ascii")


class CredentialCipher:
    """Encrypts credentials with the current key; decrypts with it or any previous key."""

    __slots__ = ("_current_id", "_fernets")

    def __init__(self, current: str, previous: Sequence[str] = ()) -> None:
        if isinstance(previous, str):  # a str is a Sequence[str]: each character would be a "key"
            raise TypeError("previous is a sequence of keys, not one key")
        current_raw = _decode_key(current, where="the current credentials key")
        self._current_id = _key_id(current_raw)
        raws = {self._current_id: current_raw}
        for number, key in enumerate(previous, start=1):
            raw = _decode_key(key, where=f"previous credentials key #{number}")
            known = raws.setdefault(_key_id(raw), raw)
            if not hmac.compare_digest(known, raw):  # two keys, one fingerprint: about 1 in 4 billion
                raise ConfigError(f"previous credentials key #{number} has the key id of another key; "
                                  f"replace one of them ({_GENERATE_HINT})")
        from cryptography.fernet import Fernet  # imported when used: 7 MB a bridge without logins never needs

        self._fernets = {kid: Fernet(base64.urlsafe_b64encode(raw)) for kid, raw in raws.items()}

    def __repr__(self) -> str:
        return f"CredentialCipher(current key id {self._current_id}, {len(self._fernets) - 1} previous)"

    def encrypt(self, data: Mapping[str, Any], *, context: str | None = None) -> str:
        """Text for a TEXT column. ``context`` (e.g. ``"remote_session:42"``) binds it to its record:
        :meth:`decrypt` then refuses it unless given the same context. Each call's output differs.
        """
        payload = json.dumps({"context": context, "data": dict(data)}, separators=(",", ":"),
                             ensure_ascii=False, allow_nan=False).encode("utf-8")
        return self._seal(self._current_id, payload)

    def decrypt(self, token: str, *, context: str | None = None) -> dict[str, Any]:
        """The credentials :meth:`encrypt` was given; ``context`` must be the one it was given."""
        payload = _parse_payload(self._open(token))
        if payload["context"] != context:
            raise CredentialContextMismatch(context)
        data: dict[str, Any] = payload["data"]
        return data

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was not written with the current key (so :meth:`rotate` would change it).

        Reads only the envelope; :meth:`decrypt` and :meth:`rotate` check the contents.
        """
        return self._envelope(token)[0] != self._current_id

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the current key (the same text if it already is).

        The payload is carried over unchanged, context binding included, so a rotation job needs
        no knowledge of which record each value belongs to.
        """
        if not self.needs_rotation(token):
            return token
        return self._seal(self._current_id, self._open(token))

    def _seal(self, kid: str, payload: bytes) -> str:
        return f"{_VERSION}:{kid}:{self._fernets[kid].encrypt(payload).decode('ascii')}"

    def _open(self, token: str) -> bytes:
        from cryptography.fernet import InvalidToken

        kid, body = self._envelope(token)
        try:
            return self._fernets[kid].decrypt(body)
        except InvalidToken:
            # The key is the right one (its id matched), so the value itself has changed.
            raise CorruptCredentials(
                "the stored credentials are damaged or were altered (they fail their integrity "
                "check); log in again to store fresh ones"
            ) from None

    def _envelope(self, token: str) -> tuple[str, str]:
        version, _, rest = token.partition(":")
        kid, _, body = rest.partition(":")
        if version != _VERSION or not body or not token.isascii():
            raise CorruptCredentials(
                f"the stored credentials are not in a format this bridge knows (expected {_VERSION}:...); "
                "they are damaged or were written by a newer bridgekit"
            )
        if kid not in self._fernets:
            raise UnknownCredentialKey(kid, list(self._fernets))
        return kid, body


def _parse_payload(payload: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    # Authenticated yet malformed: only a bug or a foreign writer with our key gets here.
    if (not isinstance(parsed, dict) or not isinstance(parsed.get("data"), dict)
            or not isinstance(parsed.get("context"), str | None)):
        raise CorruptCredentials("the stored credentials decrypt but do not hold a credentials mapping")
    return parsed


def _find_key(configured: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    from_env = environ.get(KEY_ENV, "").strip()
    file_name = environ.get(KEY_FILE_ENV, "").strip()
    if from_env and file_name:
        # Refused rather than ranked: an admin who set both cannot know which one a rule would pick.
        raise ConfigError(f"both {KEY_ENV} and {KEY_FILE_ENV} are set; set only one of them")
    if from_env:
        return from_env, KEY_ENV
    if file_name:
        return _read_key_file(Path(file_name)), f"the file {file_name} (named by {KEY_FILE_ENV})"
    if configured and configured.strip():
        return configured.strip(), "the credentials key in the config"
    raise ConfigError(
        f"no credentials key: set {KEY_ENV} (or {KEY_FILE_ENV}, a file holding it) or the credentials "
        f"key in the config; {_GENERATE_HINT}. Keep it: stored logins cannot be read without it"
    )


def _read_key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{KEY_FILE_ENV} names {path}, which does not exist") from None
    except UnicodeDecodeError:  # its message quotes a byte of the file: say less
        raise ConfigError(f"{KEY_FILE_ENV} names {path}, which is not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"{KEY_FILE_ENV} names {path}, which cannot be read: {error.strerror}") from None
    if not key:
        raise ConfigError(f"{KEY_FILE_ENV} names {path}, which is empty; {_GENERATE_HINT}")
    return key


def _decode_key(key: str, *, where: str) -> bytes:
    # validate=True refuses stray characters that the lenient decoder would silently skip.
    try:
        raw = base64.b64decode(key.strip().encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        problem = "it is not URL-safe base64"
    else:
        if len(raw) == _KEY_BYTES:
            return raw
        problem = f"it decodes to {len(raw)} bytes, not {_KEY_BYTES}"
    # Never the key itself in the message: it ends up in logs.
    raise ConfigError(f"{where} is not a valid credentials key: {problem}; {_KEY_SHAPE}; {_GENERATE_HINT}")


def _key_id(raw: bytes) -> str:
    # A keyed hash of a fixed label: names the key without revealing anything about it.
    return hmac.new(raw, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "CorruptCredentials",
    "CredentialCipher",
    "CredentialContextMismatch",
    "CredentialError",
    "UnknownCredentialKey",
    "generate_key",
    "key_bytes",
    "key_id",
    "load_key",
]
