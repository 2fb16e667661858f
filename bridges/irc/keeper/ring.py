"""Which keeper of a group should hold a connection: a consistent-hash ring, and the decisions
made of it with the group's leases. Pure (no Redis): :mod:`bridges.irc.keeper.sharing` applies them.

- :class:`HashRing` places each member at :data:`POINTS_PER_MEMBER` points of a 64-bit circle; a
  connection ID belongs to the first member point at or after its own hash. Shares are balanced
  (each member about 1/n), and adding or removing a member moves only the connections that go
  to it or came from it.
- The ring decides only where a connection *goes*: for a new connection ID (the bridge, when it
  opens one), and for the connections of a keeper whose lease expired (:func:`to_take`: each
  survivor takes what the ring of the survivors gives it). A connection that has a live owner
  stays with it, whatever the ring of today says: a keeper that comes back takes nothing back.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping

POINTS_PER_MEMBER = 160
"""Points per member on the circle: with 160, each of 2-10 members gets its share within about
10 % (the unit tests measure it)."""


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    def __init__(self, members: Iterable[str]) -> None:
        self.members = frozenset(members)
        points = sorted((_point(f"{member}#{n}"), member) for member in self.members for n in range(POINTS_PER_MEMBER))
        self._hashes = [hashed for hashed, _member in points]
        self._owners = [member for _hashed, member in points]

    def owner(self, key: str) -> str | None:
        """The member ``key`` belongs to (None: an empty ring)."""
        if not self._hashes:
            return None
        index = bisect.bisect_left(self._hashes, _point(key))
        return self._owners[index % len(self._owners)]


def live_members(leases: Mapping[str, float], now: float) -> set[str]:
    """The members whose lease (when it expires, on one clock: Redis's) has not expired."""
    return {member for member, expires in leases.items() if expires > now}


def to_take(owners: Mapping[str, str], live: Iterable[str], me: str) -> list[str]:
    """The connections ``me`` takes now: those whose owner's lease expired (or whose owner is no
    member any more) that the ring of the live members gives to ``me``. Every survivor, deciding
    alone from the same owners and leases, takes a disjoint part, and together they take all."""
    survivors = set(live)
    if me not in survivors:
        return []  # our own lease lapsed: we take nothing until it is ours again
    ring = HashRing(survivors)
    return sorted(conn for conn, owner in owners.items() if owner not in survivors and ring.owner(conn) == me)


class Unfinished:
    """Per connection, the commands this keeper took and has not finished, in stream order. What
    it records after each (:meth:`finished`) is where a new owner starts doing them again (an
    ``XRANGE`` start): the first one still open (inclusive), else just after the last one taken
    (``(id``, exclusive). Commands finish out of order (a PONG-like ``now`` line before a paced
    one): the start stays at the oldest unfinished, so nothing is skipped (at most done twice)."""

    def __init__(self) -> None:
        self._open: dict[str, dict[str, None]] = {}
        self._last: dict[str, str] = {}

    def started(self, conn: str, entry: str) -> None:
        self._open.setdefault(conn, {})[entry] = None
        self._last[conn] = entry

    def finished(self, conn: str, entry: str) -> str | None:
        """The connection's start for a new owner now (None: ``entry`` was not one taken here)."""
        still = self._open.get(conn)
        if still is None or entry not in still:
            return None
        del still[entry]
        if still:
            return next(iter(still))
        del self._open[conn]
        return f"({self._last[conn]}"

    def forget(self, conn: str) -> None:
        self._open.pop(conn, None)
        self._last.pop(conn, None)


__all__ = ["POINTS_PER_MEMBER", "HashRing", "Unfinished", "live_members", "to_take"]
