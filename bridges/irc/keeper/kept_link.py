"""A :class:`~bridges.irc.link_protocol.Link` whose socket a keeper holds: what the bridge's
sessions use when ``connectors.<network>.keeper`` is set.

Its :class:`~bridges.irc.connection_state.ConnectionState` is a mirror: filled from the keeper's
snapshot when the connection is opened or adopted, then kept by the events the bridge reads from
the inbound stream (:meth:`heard`). Lines become ``send`` commands, in order; a tracked line's
future is settled by the keeper's answer, once the server echoed the line (or it was written).
Dropped connections are the keeper's to mend, so nothing is ever unsent here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import irc.client

from bridges.irc.connection_state import ECHO_CAP, ConnectionState
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.client import KeeperClient
from bridges.irc.lines import Line
from bridges.irc.link import AccountRefused, RegistrationFailed
from bridges.irc.outgoing import OutLine


class KeptLink:
    def __init__(self, client: KeeperClient, spec: p.ConnectionSpec, *, persist: bool, timeout: float) -> None:
        self._client = client
        self.spec = spec
        self.conn = spec.conn
        self.host, self.port, self.ident = spec.host, spec.port, spec.ident
        self.state = ConnectionState(spec.nick, caps=(*spec.caps, ECHO_CAP), members=spec.members)
        self._persist = persist
        self._timeout = timeout
        self._open = False
        self._refused: str | None = None
        """The keeper said the server refused the account at a reconnect: never asked again."""

    @classmethod
    def adopted(cls, client: KeeperClient, spec: p.ConnectionSpec, state: dict[str, Any], *, persist: bool,
                timeout: float) -> KeptLink:
        """A connection the keeper held while the bridge was away, as it is now."""
        link = cls(client, spec, persist=persist, timeout=timeout)
        p.restore(link.state, state)
        link._open = True
        return link

    @property
    def nick(self) -> str:
        return self.state.nick

    @property
    def isupport(self) -> Mapping[str, str]:
        return self.state.isupport

    @property
    def connected(self) -> bool:
        return self._open and self.state.registered

    @property
    def has_unsent(self) -> bool:
        return False  # queued lines wait in the keeper, which sends them after its own reconnects

    async def connect(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Open the connection in the keeper, or adopt it there as it is (no NICK, no JOIN)."""
        if self._refused is not None:  # the same password again cannot help: the user logs in again
            raise AccountRefused(self._refused)
        if not self._client.paired:  # its Redis out of reach at the bridge's start: tried again later
            raise ConnectionError(f"{self.host}:{self.port}: not paired with the IRC keeper yet (its Redis is out of "
                                  "reach)")
        answer = self._client.command("open", self.conn, {"spec": self.spec.to_json()})
        try:
            async with asyncio.timeout(timeout or self._timeout):
                result = await answer
        except TimeoutError:
            raise RegistrationFailed(
                f"{self.host}:{self.port}: the IRC keeper {self._client.keeper_id!r} did not answer in time "
                "(is it running? bridgekit-irc-keeper -c config.yaml)"
            ) from None
        if not result.ok and result.data.get("refused"):
            raise AccountRefused(result.error)  # the server's reason, as without a keeper (one attempt)
        if not result.ok:
            raise RegistrationFailed(f"{self.host}:{self.port}: {result.error}")
        p.restore(self.state, result.data)
        self._open = True

    def heard(self, event: irc.client.Event) -> irc.client.Event | None:
        """An event of this connection, read from the inbound stream: the mirror learns it, and
        it is returned for the connector to handle. But the keeper's word that the server refused
        the account at a reconnect comes back as the connection's disconnect (the connector
        reconnects the session, and :meth:`connect` raises the refusal, as an ``IrcLink``'s
        would), or as None while this link is still opening (its answer carries the refusal)."""
        refused = p.refusal_of(event)
        if refused is not None:
            if not self._open:
                return None
            self._open, self._refused = False, refused
            event = irc.client.Event("disconnect", None, None, [refused])
        self.state.hear(event)  # what to write about it is the keeper's business
        return event

    # ---- writing ---------------------------------------------------------------------------------

    def send(self, line: Line) -> None:
        if line.command == "JOIN" and line.target is not None and self.state.fold(line.target) in self.state.channels:
            return  # adopted in the channel already: a JOIN again would be noise at best
        self._line(line, key=None, answer=False)

    def send_tracked(self, line: Line, *, key: str | None = None) -> asyncio.Future[None]:
        return self._line(line, key=key, answer=True)

    def send_now(self, line: Line) -> None:
        self._line(line, key=None, answer=False, now=True)

    def _line(self, line: Line, *, key: str | None, answer: bool, now: bool = False) -> asyncio.Future[None]:
        if not self._open:
            raise ConnectionError(f"not connected to {self.host}")
        data: dict[str, Any] = {"command": line.command, "params": list(line.params), "trailing": line.trailing}
        if key is not None:
            data["key"] = key
        if now:
            data["now"] = True
        result = self._client.command("send", self.conn, data, answer=answer)
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        result.add_done_callback(lambda done: _settle(settled, done))
        return settled

    def pass_on(self, line: OutLine) -> None:
        settled = self.send_tracked(line.line)
        if line.settled is not None:
            settled.add_done_callback(lambda _done: line.settle())

    def requeue(self, lines: list[OutLine]) -> None:
        for line in lines:
            self.pass_on(line)

    def take_unsent(self) -> list[OutLine]:
        return []

    async def close(self, reason: str = "", *, fail_unsettled: bool = True) -> None:
        """``fail_unsettled`` false is the bridge stopping: with ``persist_connections_on_shutdown``
        the connection stays up in the keeper (no QUIT), and its unsettled lines with it."""
        if not self._open:
            return
        self._open = False
        if not fail_unsettled and self._persist:
            return
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(self._timeout):
                await self._client.command("close", self.conn, {"reason": reason})


def _settle(settled: asyncio.Future[None], done: asyncio.Future[p.Result]) -> None:
    if settled.done():
        return
    if done.cancelled():
        settled.cancel()
        return
    result = done.result()
    if result.ok:
        settled.set_result(None)
    else:
        settled.set_exception(ConnectionError(result.error or "the IRC keeper could not send the line"))


__all__ = ["KeptLink"]
