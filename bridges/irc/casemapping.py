"""IRC case folding: which nicks and channels the server treats as one.

The network's ISUPPORT ``CASEMAPPING`` decides it, so ``#Python``/``#python`` and, under rfc1459,
``[Bot]``/``{bot}`` map to one ghost or portal. ``rfc7613`` is approximated as
``NFKC(casefold(NFKC(text)))``: Unicode-aware and idempotent, without PRECIS's rejection of
disallowed code points (we fold for identity; the IRC server does the validating).
"""

from __future__ import annotations

import unicodedata
from types import MappingProxyType
from typing import Final

CASEMAPPINGS: Final = ("ascii", "rfc1459", "strict-rfc1459", "rfc7613")
"""The ISUPPORT ``CASEMAPPING`` values :func:`casefold_irc` understands."""

# Read-only views: translate tables shared by every call must not be mutable module state.
_ASCII_FOLD: Final = MappingProxyType(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))
_RFC1459_FOLD: Final = MappingProxyType(
    str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
)
_STRICT_RFC1459_FOLD: Final = MappingProxyType(
    str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\", "abcdefghijklmnopqrstuvwxyz{}|")
)


def casefold_irc(text: str, casemapping: str = "rfc1459") -> str:
    """Fold ``text`` (a nick or channel) by the IRC ISUPPORT ``CASEMAPPING`` named.

    ``ascii``: A-Z only. ``rfc1459``: A-Z and ``[]\\~`` -> ``{}|^``. ``strict-rfc1459``: A-Z and
    ``[]\\`` -> ``{}|``. ``rfc7613``: ``NFKC(casefold(NFKC(text)))``. The name is matched
    case-insensitively; any other value raises ``ValueError``, since guessing could merge or split
    users differently from the IRC server.
    """
    mapping = casemapping.lower()
    if mapping == "ascii":
        return text.translate(_ASCII_FOLD)
    if mapping == "rfc1459":
        return text.translate(_RFC1459_FOLD)
    if mapping == "strict-rfc1459":
        return text.translate(_STRICT_RFC1459_FOLD)
    if mapping == "rfc7613":
        # The outer NFKC makes the fold idempotent: casefold can produce un-normalised sequences.
        return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    raise ValueError(f"unknown IRC CASEMAPPING {casemapping!r}; supported: {', '.join(CASEMAPPINGS)}")


__all__ = ["CASEMAPPINGS", "casefold_irc"]
