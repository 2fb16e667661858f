"""Who the bridge has seen on the network: each nick with its ident and host, when known.

Moderation needs both: a Matrix moderator may only ban a ghost whose nick the bridge has actually
seen (any other ghost ID is text someone chose), and a ban mask names an ident and a host. They
are learnt from what the server sends anyway: the ``nick!ident@host`` prefix of every line, the
WHO reply the bot asks for when it joins a channel, NAMES with ``userhost-in-names``, nick
changes and CHGHOST. The bridge's own connections are recorded apart (:class:`BridgeIdentities`):
a mask that would match one of them bans bridged Matrix users.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_REMEMBERED = 50_000
"""Nicks kept (least recently seen dropped first): a big network's channels, bounded."""


@dataclass(frozen=True)
class UserHost:
    """A nick as the server showed it, with its ident (``~`` kept) and host when known."""

    nick: str
    ident: str | None = None
    host: str | None = None


class KnownUsers:
    """Nicks seen on the network, folded by the network's CASEMAPPING."""

    def __init__(self, fold: Callable[[str], str], *, limit: int = MAX_REMEMBERED) -> None:
        self._fold = fold
        self._limit = limit
        self._users: OrderedDict[str, UserHost] = OrderedDict()

    def saw(self, nick: str, ident: str | None = None, host: str | None = None) -> UserHost:
        """Record ``nick`` (and what is known of it; unknown parts keep what was known)."""
        folded = self._fold(nick)
        before = self._users.pop(folded, None)
        if before is not None:
            ident, host = ident or before.ident, host or before.host
        seen = UserHost(nick, ident or None, host or None)
        self._users[folded] = seen
        while len(self._users) > self._limit:
            self._users.popitem(last=False)
        return seen

    def renamed(self, old: str, new: str) -> UserHost:
        """``old`` is now ``new`` (same person: ident and host carry over). The old nick stays
        known: a moderator may still act on the ghost they saw leave."""
        before = self._users.get(self._fold(old))
        return self.saw(new, before.ident if before else None, before.host if before else None)

    def get(self, folded: str) -> UserHost | None:
        return self._users.get(folded)


@dataclass
class BridgeIdentities:
    """The idents and hosts the bridge's own connections have (hosts as the server shows them)."""

    idents: set[str] = field(default_factory=set)
    """Folded, without ``~``: what the connections register with and what the server shows."""
    hosts: set[str] = field(default_factory=set)
    """Folded. Empty until the server shows one: then every host may be the bridge's."""

    def add(self, ident: str | None, host: str | None) -> None:
        if ident:
            self.idents.add(ident.lstrip("~").lower())
        if host:
            self.hosts.add(host.lower())


__all__ = ["BridgeIdentities", "KnownUsers", "UserHost"]
