"""Signed, expiring links to Matrix files, for IRC users (pure).

IRC has no file transfer, so a file sent on Matrix reaches IRC as a link the bridge serves. The
bridge fetches the file with its bot's token, which can read any file the homeserver holds: an
unsigned link (``/media/{server}/{id}``) made the bridge an open proxy to all of them for anyone
who guessed an ID. So a link is minted only when a Matrix message carrying the file is bridged,
and carries its expiry and an HMAC over (network, server, media ID, expiry) with the connector's
signing key; anything else, or anything changed, is no link at all (the route answers 404).

Links must stay short on an IRC line: the expiry is base36 Unix seconds and the HMAC is cut to
96 bits, base64url: ``/media/matrix.org/AbCd.../shm2k0.q1w2e3r4t5y6u7i8/photo.png``.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable

from bridgekit import SigningKey

TAG_BYTES = 12
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""The spec's media ID grammar (the ``mxc://`` URI's second part)."""
_SERVER_NAME = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?")
_EXPIRY = re.compile(r"[0-9a-z]{1,12}")
_TAG = re.compile(r"[A-Za-z0-9_-]{16}")
"""TAG_BYTES in unpadded base64url (the decoder would skip stray characters: checked first)."""


class MediaLinks:
    """Mints and checks the ``{server}/{media_id}/{token}`` part of a network's media links."""

    def __init__(
        self, key: SigningKey, network: str, *, lifetime_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self._network = network
        self._lifetime = lifetime_seconds
        self._clock = clock

    def mint(self, mxc: str) -> str | None:
        """``{server}/{media_id}/{token}`` for ``mxc``, valid for the lifetime from now; None
        for anything that is not an ``mxc://`` URI of the spec's grammar."""
        server, _, media_id = mxc.removeprefix("mxc://").partition("/")
        if not mxc.startswith("mxc://") or not _valid(server, media_id):
            return None
        expiry = _base36(int(self._clock() + self._lifetime))
        tag = self._key.sign(self._message(server, media_id, expiry), length=TAG_BYTES)
        return f"{server}/{media_id}/{expiry}.{base64.urlsafe_b64encode(tag).decode('ascii').rstrip('=')}"

    def check(self, server: str, media_id: str, token: str) -> bool:
        """Whether ``token`` was minted by :meth:`mint` for this file and has not expired."""
        expiry, _, encoded = token.partition(".")
        if not (_valid(server, media_id) and _EXPIRY.fullmatch(expiry) and _TAG.fullmatch(encoded)):
            return False
        if int(expiry, 36) < self._clock():
            return False
        tag = base64.urlsafe_b64decode(encoded)
        return self._key.verify(self._message(server, media_id, expiry), tag)

    def _message(self, server: str, media_id: str, expiry: str) -> bytes:
        # NUL cannot occur in any part (each is checked against its grammar first).
        return f"irc media link v1\0{self._network}\0{server}\0{media_id}\0{expiry}".encode()


def _valid(server: str, media_id: str) -> bool:
    return bool(_SERVER_NAME.fullmatch(server)) and bool(_MEDIA_ID.fullmatch(media_id))


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
        if number == 0:
            return text


__all__ = ["MediaLinks"]
