"""A channel MODE line read as separate changes, and what a channel's modes mean for its portal
(pure).

``MODE #chan +ob-k alice *!*@spam.example key`` is three changes, and which of them take a
parameter is the server's to say: the member modes of ISUPPORT ``PREFIX`` (``o``, ``h``, ``v``...)
and the four classes of ISUPPORT ``CHANMODES`` (lists such as bans, modes that always take a
parameter, modes that take one only when set, flags). Reading them by a fixed list would shift
every parameter after an unknown mode onto the wrong change: a ban mask read as a nick.

What the portal shows of the channel's modes: ``+i`` (invite only) or ``+k`` (a key) make the
portal invite-only on Matrix, since a Matrix user who joined it freely would be refused on IRC
or, worse, read a channel the IRC side keeps closed; ``+s`` (secret) takes the portal out of the
room directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_CHANMODES = "beI,k,l,"
"""RFC 1459's channel modes with a parameter, until the server says (ISUPPORT CHANMODES)."""


@dataclass(frozen=True)
class ModeChange:
    """One change of a MODE line: ``+b`` with its mask, ``-o`` with its nick, ``+i``..."""

    adding: bool
    mode: str
    param: str | None = None


def parse_mode_changes(
    modes: str, params: list[str], *, member_modes: str, chanmodes: str = DEFAULT_CHANMODES
) -> list[ModeChange]:
    """The changes of ``MODE <target> <modes> <params...>``; a change whose parameter is missing
    (a line cut short) gets None."""
    lists, always, on_set, *_ = [*chanmodes.split(","), "", "", ""]
    remaining = list(params)
    adding = True
    changes: list[ModeChange] = []
    for mode in modes:
        if mode in "+-":
            adding = mode == "+"
            continue
        takes_param = mode in member_modes or mode in lists or mode in always or (adding and mode in on_set)
        param = (remaining.pop(0) if remaining else None) if takes_param else None
        changes.append(ModeChange(adding, mode, param))
    return changes


@dataclass(frozen=True)
class PortalAccess:
    """What the portal's Matrix room shows of the channel's modes."""

    join_rule: str
    """``invite`` (``+i`` or ``+k``) or ``public``."""
    in_directory: bool
    """False for a ``+s`` (secret) channel."""


def portal_access(channel_modes: Mapping[str, str]) -> PortalAccess:
    """See the module docstring; ``channel_modes``: mode -> parameter, as the bot knows them."""
    closed = "i" in channel_modes or "k" in channel_modes
    return PortalAccess("invite" if closed else "public", "s" not in channel_modes)


__all__ = ["DEFAULT_CHANMODES", "ModeChange", "PortalAccess", "parse_mode_changes", "portal_access"]
