"""Keys a connector signs what it hands out with (links that must not be forged), and their HMACs.

A connector asks :meth:`bridgekit.BridgeContext.signing_key` for the key of one purpose
(``"media-links"``). The bridge derives it with HKDF-SHA256 from the credentials key when one is
configured (so it is as secret as that key, and follows its rotation: the previous keys' derived
keys still verify), otherwise it generates one once and keeps it in the database. Each connector
and purpose gets a key of its own: a signature made for one never verifies for another.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

KEY_BYTES = 32
MIN_TAG_BYTES = 12
"""A truncated HMAC shorter than 96 bits is refused: forging stays out of reach of online guessing."""
_HKDF_SALT = b"bridgekit signing key v1"


def derive_key(material: bytes, *, connector: str, purpose: str) -> bytes:
    """The key for (``connector``, ``purpose``) derived from ``material`` (the credentials key)
    with HKDF-SHA256 (RFC 5869)."""
    from cryptography.hazmat.primitives import hashes  # imported when used, as credentials.py does
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info = f"{connector}\0{purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=info).derive(material)


@dataclass(frozen=True)
class SigningKey:
    """HMAC-SHA256 with ``current``; tags made with a ``previous`` key still verify."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def __repr__(self) -> str:  # never the key, not even in a traceback's locals
        return f"SigningKey({len(self.previous)} previous)"

    def sign(self, message: bytes, *, length: int = KEY_BYTES) -> bytes:
        """The HMAC of ``message``, truncated to ``length`` bytes (at least 12)."""
        if not MIN_TAG_BYTES <= length <= KEY_BYTES:
            raise ValueError(f"a tag is {MIN_TAG_BYTES} to {KEY_BYTES} bytes, not {length}")
        return hmac.new(self.current, message, hashlib.sha256).digest()[:length]

    def verify(self, message: bytes, tag: bytes) -> bool:
        """Whether ``tag`` (as :meth:`sign` made it, of any allowed length) signs ``message``;
        compared in constant time."""
        if not MIN_TAG_BYTES <= len(tag) <= KEY_BYTES:
            return False
        matches = [
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest()[: len(tag)], tag)
            for key in (self.current, *self.previous)
        ]
        return any(matches)


__all__ = ["KEY_BYTES", "MIN_TAG_BYTES", "SigningKey", "derive_key"]
