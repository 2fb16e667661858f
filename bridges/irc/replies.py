"""Waiting for the server's answer to a question a command asked (WHOIS, NAMES, TOPIC): the
numerics that answer it, up to the one that ends it, on the connection that asked, bounded in
time. The connector hands every event of every connection to :meth:`ReplyWaiters.hear`; a
command asks with :meth:`ReplyWaiters.ask`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import irc.client

REPLY_TIMEOUT_S = 10.0



@dataclass
class _Waiter:
    link: object
    kinds: frozenset[str]
    ends: frozenset[str]
    about: Callable[[irc.client.Event], bool]
    heard: list[irc.client.Event] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ReplyWaiters:
    def __init__(self) -> None:
        self._waiting: list[_Waiter] = []

    def hear(self, link: object, event: irc.client.Event) -> None:
        for waiter in self._waiting:
            if waiter.link is link and event.type in waiter.kinds | waiter.ends and waiter.about(event):
                waiter.heard.append(event)
                if event.type in waiter.ends:
                    waiter.done.set()

    async def ask(
        self, link: object, question: Callable[[], object], *, kinds: frozenset[str], ends: frozenset[str],
        about: Callable[[irc.client.Event], bool], timeout: float = REPLY_TIMEOUT_S,  # noqa: ASYNC109
    ) -> list[irc.client.Event]:
        """Ask (``question()`` sends the lines) on ``link`` and return the events of ``kinds`` that answer it (those
        ``about`` accepts), up to and including the first of ``ends``; what came by ``timeout``
        when no end came (a server that never answers does not hold the command for ever)."""
        waiter = _Waiter(link, kinds, ends, about)
        self._waiting.append(waiter)
        try:
            question()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await waiter.done.wait()
            return list(waiter.heard)
        finally:
            self._waiting.remove(waiter)


def argument(event: irc.client.Event, index: int) -> str:
    """The event's ``index``-th argument as text ("" when there is none)."""
    return str(event.arguments[index]) if len(event.arguments) > index else ""


__all__ = ["REPLY_TIMEOUT_S", "ReplyWaiters", "argument"]
