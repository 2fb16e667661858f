"""uvicorn's HTTP protocol, with each response sent in one piece.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body with ``http.response.body``: two ``send`` calls, so two TCP
segments, two wake-ups of the peer. Over loopback the kernel delivers each segment in the
sender's own time slice, and the second write cost as much as all the parsing of a one-event
transaction (``perf``: the socket writes were 15 % of the bridge's CPU at one event per
transaction, bench/README.md). Here the writes made in one turn of the event loop are joined and
sent together at the end of that turn: the same bytes, in the same order, one segment.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _JoinedWrites:
    """Stands in for the transport: ``write`` collects, the rest goes straight through (after
    anything collected has been sent, so the order on the wire is the order of the calls)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # an upgrade: what follows is the new protocol's
        self._transport.set_protocol(protocol)

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedWritesHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose writes of one loop turn leave as one."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        joined: Any = _JoinedWrites(transport, self.loop)
        super().connection_made(joined)


__all__ = ["JoinedWritesHttpToolsProtocol"]
