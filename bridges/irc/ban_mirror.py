"""An IRC ban set in a bridged channel: does it stand for one Matrix user (pure)?

Every Matrix user with a connection of their own reaches IRC from the bridge's host, so a mask
that names that host (``*!*@bridge.example``) bans all of them and the bridge bot too; mirroring
it would ban every bridged user from the portal for what one of them did, and banning the bot's
own host is not something Matrix has a word for. The rule:

- the mask matches exactly one of the bridge's connections, and that connection is a Matrix
  user's (virtual or logged in): that user is banned from the portal (``-b`` of the same mask
  unbans them);
- it matches none: an IRC user's ban, nothing for Matrix (their ghost leaves when kicked);
- it matches several, or the bot: not mirrored, and the room is told why, so the Matrix side
  knows its users may be refused on IRC.

Matching is IRC's: ``*`` any run of characters, ``?`` one, everything else literal (``[`` is a
nick character, not a class), compared after folding both sides by the network's CASEMAPPING.
Extended bans (``~q:``, ``m:``, ``$a:``...) are not ``nick!ident@host`` masks: not mirrored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridgekit import UserID


@dataclass(frozen=True)
class Connection:
    """One of the bridge's connections as the network shows it; ``owner`` None: the bot."""

    owner: UserID | None
    nick: str
    idents: tuple[str, ...]
    """The ident it registered with, and the one the server showed (with ``~`` when no identd
    answered), when known."""
    hosts: tuple[str, ...]
    """The host the server showed, or every host the bridge is known by when it showed none."""


@dataclass(frozen=True)
class BanMirror:
    """What a ban means on Matrix: ban ``user``, or nothing (``notice`` says why, when the room
    should hear it)."""

    user: UserID | None = None
    notice: str | None = None


def mask_matches(mask: str, address: str, fold: Callable[[str], str]) -> bool:
    """Whether the IRC glob ``mask`` matches ``address`` (``nick!ident@host``)."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in fold(mask))
    return re.fullmatch(pattern, fold(address), flags=re.DOTALL) is not None


def is_address_mask(mask: str) -> bool:
    """A ``nick!ident@host`` mask (not an extended ban, which names an account, a realname...)."""
    nick, bang, rest = mask.partition("!")
    return bool(bang) and "@" in rest and ":" not in nick and not nick.startswith(("~", "$"))


def addresses(connection: Connection) -> list[str]:
    """Every ``nick!ident@host`` the connection may be seen as (the server may show its ident
    with ``~``, when no identd answered)."""
    idents = {form for ident in connection.idents for form in (ident.lstrip("~"), f"~{ident.lstrip('~')}")}
    return [f"{connection.nick}!{ident}@{host}" for ident in sorted(idents) for host in connection.hosts]


def mirror_ban(
    mask: str, connections: Sequence[Connection], *, fold: Callable[[str], str], channel: str, setter: str,
    adding: bool = True,
) -> BanMirror:
    """See the module docstring."""
    if not is_address_mask(mask):
        return BanMirror()
    hit = [c for c in connections if any(mask_matches(mask, a, fold) for a in addresses(c))]
    if not hit:
        return BanMirror()
    if len(hit) == 1 and hit[0].owner is not None:
        return BanMirror(user=hit[0].owner)
    if not adding:
        return BanMirror()
    who = "the bridge itself" if any(c.owner is None for c in hit) else f"{len(hit)} Matrix users' connections"
    return BanMirror(notice=(
        f"{setter} banned {mask} in {channel} on IRC. It matches {who} (every bridged Matrix user "
        "comes from the bridge's host), so it is not mirrored here: the Matrix users it matches may "
        "be refused on IRC. A ban on one Matrix user's ident (*!ident@host) is mirrored."
    ))


__all__ = ["BanMirror", "Connection", "addresses", "is_address_mask", "mask_matches", "mirror_ban"]
