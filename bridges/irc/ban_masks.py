"""Which IRC ban mask stands for one person, or why none safely does (pure).

A Matrix moderator bans an IRC user's ghost; on IRC a ban is a mask, and a careless one bans far
more than one person. Every Matrix user with a connection of their own comes from the bridge's
host, so ``*!*@bridgehost`` would ban all of them; ``nick!*@*`` is undone by a nick change and
``*!*@*`` bans everyone. The rule, in order:

1. ``*!ident@host`` when the ident is known and has no ``~`` (identd confirmed it, or the server
   does not look idents up and shows them as given), unless a connection of the bridge has that
   ident on that host (or the bridge's host is not known yet);
2. ``*!*@host`` when no connection of the bridge uses that host (and the bridge's host is known);
3. otherwise no ban: the moderator is told why (:attr:`BanChoice.reason`).

Idents and hosts holding a wildcard, a separator or a control character are treated as unknown,
so nothing a user controls can widen a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridges.irc.known_users import BridgeIdentities, UserHost

_NOT_IN_MASKS = frozenset("*?!@, ")


@dataclass(frozen=True)
class BanChoice:
    """``mask`` to set, or None and the ``reason`` no mask is safe (said to the moderator)."""

    mask: str | None
    reason: str = ""


def choose_ban_mask(user: UserHost, bridge: BridgeIdentities) -> BanChoice:
    """The narrowest safe ban mask for ``user`` (see the module docstring)."""
    ident = user.ident if _mask_safe(user.ident) else None
    host = user.host if _mask_safe(user.host) else None
    if host is None:
        return BanChoice(None, f"the bridge does not know {user.nick}'s host")
    bridge_host_known = bool(bridge.hosts)
    on_bridge_host = not bridge_host_known or host.lower() in bridge.hosts
    verified = ident is not None and not ident.startswith("~")
    if verified and not (on_bridge_host and str(ident).lower() in bridge.idents):
        return BanChoice(f"*!{ident}@{host}")
    if not on_bridge_host:
        return BanChoice(f"*!*@{host}")
    why_not_ident = (
        f"its ident {ident} is not verified" if ident is not None and ident.startswith("~")
        else f"its ident {ident} is one of the bridge's own" if ident is not None
        else "its ident is not known"
    )
    why_not_host = (
        f"its host {host} is the bridge's own, which every bridged Matrix user shares"
        if bridge_host_known else "the bridge does not know its own host yet"
    )
    return BanChoice(None, f"{why_not_ident}, and {why_not_host}")


def _mask_safe(part: str | None) -> bool:
    return bool(part) and not any(c in _NOT_IN_MASKS or ord(c) < 32 or c == "\x7f" for c in part or "")


__all__ = ["BanChoice", "choose_ban_mask"]
