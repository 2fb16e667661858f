"""identd (RFC 1413): tells an IRC server which bridged Matrix user a connection belongs to.

An IRC server that asks identd shows the answer as the connection's ident (no ``~``), so an
operator can ban ``*!alice1a2b3@bridgehost`` and hit one Matrix user, not the whole bridge. A
query is one line, ``<port-on-server> , <port-on-client>``: the first port is the bridge's end of
the connection (this host), the second the IRC server's. The answer names the ident of the
bridge connection with exactly those two ports, and a peer address equal to the querying host
(nobody else learns who is behind a port), else ``ERROR : NO-USER``.

One listener per bridge process and address: every IRC network configured with the same
``identd`` address registers its lookup with it (``listener_for``), and the last one to stop
closes it. Hostile input: lines over :data:`MAX_QUERY_BYTES` or not ending within
:data:`QUERY_TIMEOUT_S` close the connection; anything that is not two ports gets
``ERROR : INVALID-PORT``; a connection answers at most :data:`MAX_QUERIES` queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

MAX_QUERY_BYTES = 128
"""RFC 1413 queries are two port numbers: anything longer is not one."""
QUERY_TIMEOUT_S = 10.0
MAX_QUERIES = 5
"""Per connection (RFC 1413 allows several on one): enough for a server, bounded for a flood."""

_QUERY = re.compile(r"\s*(\d{1,5})\s*,\s*(\d{1,5})\s*")

Lookup = Callable[[int, int, str], "str | None"]
"""(port on this host, port on the peer, the peer's address) -> the ident of that connection."""


@dataclass(frozen=True)
class Query:
    local_port: int
    remote_port: int


def parse_query(line: str) -> Query | None:
    """``"6193, 23"`` -> the two ports; None for anything else (or a port out of range)."""
    found = _QUERY.fullmatch(line)
    if found is None:
        return None
    local, remote = int(found.group(1)), int(found.group(2))
    return Query(local, remote) if 0 < local < 65536 and 0 < remote < 65536 else None


def answer(line: str, ident: str | None) -> str:
    """The response line (with CR LF) to ``line``, given the ident found for it."""
    query = parse_query(line)
    if query is None:
        return "0, 0 : ERROR : INVALID-PORT\r\n"
    # Not an IRC line (identd's own protocol): fields joined by " : ", as RFC 1413 writes them.
    fields = ("USERID", "UNIX", ident) if ident else ("ERROR", "NO-USER")
    return " : ".join((f"{query.local_port}, {query.remote_port}", *fields)) + "\r\n"


class IdentListener:
    """One ``asyncio`` server answering for every network registered with it."""

    def __init__(self, host: str, port: int, *, timeout: float = QUERY_TIMEOUT_S) -> None:
        self.host, self.port = host, port
        """``port`` 0: any free port, the one chosen once listening."""
        self.timeout = timeout
        self._lookups: dict[str, Lookup] = {}
        self._server: asyncio.Server | None = None

    async def register(self, network: str, lookup: Lookup) -> None:
        self._lookups[network] = lookup
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_QUERY_BYTES)
            self.port = self._server.sockets[0].getsockname()[1]
            log.info("identd listening on %s:%d", self.host, self.port)

    async def unregister(self, network: str) -> None:
        self._lookups.pop(network, None)
        if not self._lookups and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def ident_for(self, local_port: int, remote_port: int, peer: str) -> str | None:
        for lookup in list(self._lookups.values()):
            ident = lookup(local_port, remote_port, peer)
            if ident is not None:
                return ident
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_address = writer.get_extra_info("peername")
        peer = str(peer_address[0]) if isinstance(peer_address, tuple) else ""
        try:
            for _ in range(MAX_QUERIES):
                raw = await asyncio.wait_for(reader.readuntil(b"\n"), self.timeout)
                line = raw.decode("ascii", errors="replace").strip()
                query = parse_query(line)
                ident = self.ident_for(query.local_port, query.remote_port, peer) if query is not None else None
                writer.write(answer(line, ident).encode("ascii"))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # too slow, too long, or gone: close
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class Endpoints(Protocol):
    """A connection of the bridge as identd sees it (:class:`bridges.irc.link.IrcLink`)."""

    ident: str

    def endpoints(self) -> tuple[int, str, int] | None: ...


def lookup_in(links: Callable[[], Iterable[Endpoints]]) -> Lookup:
    """A :data:`Lookup` over the connections ``links()`` lists at the time of each query."""

    def lookup(local_port: int, remote_port: int, peer: str) -> str | None:
        for link in links():
            ends = link.endpoints()
            if ends is not None and (ends[0], ends[2]) == (local_port, remote_port) and _same_host(ends[1], peer):
                return link.ident
        return None

    return lookup


def _same_host(a: str, b: str) -> bool:
    return a.removeprefix("::ffff:") == b.removeprefix("::ffff:")


_LISTENERS: weakref.WeakKeyDictionary[object, dict[tuple[str, int], IdentListener]] = weakref.WeakKeyDictionary()


async def serve(owner: object, host: str, port: int, network: str, lookup: Lookup) -> None:
    """Register ``network`` with the bridge's listener on ``host:port``; a listener that cannot
    start (port taken, or 113 without privileges) is logged, and the network runs without identd
    (its users' idents then show with ``~``): identd is an aid to IRC operators, not a reason to
    keep a network down."""
    try:
        await listener_for(owner, host, port).register(network, lookup)
    except OSError as error:
        log.error("%s: identd cannot listen on %s:%d (%s); running without it", network, host, port, error)


def listener_for(owner: object, host: str, port: int) -> IdentListener:
    """The bridge ``owner``'s (its ``ctx.remote``) listener on ``host:port``, made on first use."""
    listeners = _LISTENERS.setdefault(owner, {})
    listener = listeners.get((host, port))
    if listener is None:
        listener = listeners[(host, port)] = IdentListener(host, port)
    return listener


__all__ = [
    "MAX_QUERIES", "MAX_QUERY_BYTES", "Endpoints", "IdentListener", "Query", "answer", "listener_for", "lookup_in",
    "parse_query",
    "serve",
]
