"""What the sessions and the connector use of a connection to IRC: a :class:`Link`.

Two kinds satisfy it: :class:`~bridges.irc.link.IrcLink`, the socket in the bridge's own process
(no keeper configured), and :class:`~bridges.irc.keeper.kept_link.KeptLink`, a connection held by
a connection keeper and reached through Redis (``connectors.<network>.keeper``). The connector
picks one in ``_new_link``; nothing else knows which it has."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from bridges.irc.connection_state import ConnectionState
from bridges.irc.lines import Line
from bridges.irc.outgoing import OutLine


class Link(Protocol):
    state: ConnectionState
    ident: str
    host: str

    @property
    def nick(self) -> str: ...
    @property
    def isupport(self) -> Mapping[str, str]: ...
    @property
    def connected(self) -> bool: ...
    @property
    def has_unsent(self) -> bool: ...

    async def connect(self, timeout: float = 30.0) -> None: ...  # noqa: ASYNC109
    def send(self, line: Line) -> None: ...
    def send_tracked(self, line: Line, *, key: str | None = None) -> asyncio.Future[None]:
        """``key``: the line's idempotency key (Matrix event ID and line index): a keeper that
        already sent a line with this key does not send it again."""
        ...

    def send_now(self, line: Line) -> None: ...
    def pass_on(self, line: OutLine) -> None: ...
    def requeue(self, lines: list[OutLine]) -> None: ...
    def take_unsent(self) -> list[OutLine]: ...
    async def close(self, reason: str = "", *, fail_unsettled: bool = True) -> None: ...


NewLink = Callable[..., Link]
"""``new_link(nick, ident=, realname=, owner=, account=, login_check=)``: a link to the network, not
yet connected (the connector's ``_new_link``: in this process or in a keeper)."""


__all__ = ["Link", "NewLink"]
