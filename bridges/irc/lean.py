"""Small stand-ins for what every IRC connection would otherwise hold a full copy of.

A connection keeper holds 10,000 connections and more; what each one costs is multiplied by that
(docs/scaling.md, "The IRC connection keeper"). Measured with tracemalloc, an idle connection
held five ``asyncio.Event`` s (each with a 760-byte deque, waited on only while connecting) and
its own copy of the server's ISUPPORT (the same 20 tokens for every connection to one server):
about 6 KB of 19 KB. These keep the behaviour and drop the copies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

SHARED_LIMIT = 256
"""Distinct ISUPPORT sets remembered (one or a few per server); past it the cache starts again."""

_shared: dict[frozenset[tuple[str, str]], Mapping[str, str]] = {}


class LazyEvent:
    """``asyncio.Event``'s ``is_set``/``set``/``clear``/``wait``, with no waiter list until someone
    waits (an Event makes a deque at once; most of a held connection's are never waited on again)."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> Literal[True]:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


def shared(mapping: Mapping[str, str]) -> Mapping[str, str]:
    """One read-only copy of ``mapping`` for every connection that has the same one (ISUPPORT):
    holders replace it with another, never change it (it refuses changes: they would be everyone's)."""
    key = frozenset(mapping.items())
    found = _shared.get(key)
    if found is None:
        if len(_shared) >= SHARED_LIMIT:
            _shared.clear()
        found = _shared[key] = MappingProxyType(dict(mapping))
    return found


__all__ = ["LazyEvent", "shared"]
