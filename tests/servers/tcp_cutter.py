"""A TCP relay in front of a server whose open connections can be cut silently.

``cut()`` is a route that died: from then on the data of every connection open at that moment
goes nowhere, in both directions, and nothing is closed, so neither end learns of it from TCP.
Connections made afterwards pass as usual. That is what a client's keepalive has to notice, and
what a dropped line's redelivery has to survive.

``admitting`` (an event, set at first): cleared, new connections wait at the relay until it is
set again, so a test decides when a client's reconnect reaches a restarted server.
"""

from __future__ import annotations

import asyncio
import contextlib

from bridgekit.demo.ports import PortReservation


class _Pair:
    def __init__(self) -> None:
        self.cut = False
        self.client_closed = asyncio.Event()


class TcpCutter:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self._reservation = PortReservation.acquire()
        self._server: asyncio.Server | None = None
        self._pairs: list[_Pair] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.admitting = asyncio.Event()
        self.admitting.set()

    @property
    def port(self) -> int:
        return self._reservation.port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._server.wait_closed()
            self._server = None
        self._reservation.release()

    async def __aenter__(self) -> TcpCutter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def connections_made(self) -> int:
        """How many connections clients have opened through the relay so far."""
        return len(self._pairs)

    def cut(self) -> int:
        """Silence every connection open now; returns how many."""
        live = [pair for pair in self._pairs if not pair.client_closed.is_set()]
        for pair in live:
            pair.cut = True
        return len(live)

    async def wait_cut_client_gone(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Until every client whose connection was cut has closed it (it gave up on the silence)."""
        async with asyncio.timeout(timeout):
            for pair in self._pairs:
                if pair.cut:
                    await pair.client_closed.wait()

    async def _on_connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        pair = _Pair()
        self._pairs.append(pair)
        await self.admitting.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            pair.client_closed.set()
            self._tasks.discard(task)
            return
        up = asyncio.create_task(self._pump(client_reader, upstream_writer, pair))
        down = asyncio.create_task(self._pump(upstream_reader, client_writer, pair))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if pair.cut or not down.done():
                await up  # ends when the client closes its side
            # else the server closed the connection (a restart): the client hears of it
        finally:
            up.cancel()
            pair.client_closed.set()
            if pair.cut:
                # The server must not hear of it either: its end stays open until its own timeout.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.sleep(3600)
            down.cancel()
            for writer in (upstream_writer, client_writer):
                writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair) -> None:
        while data := await reader.read(65536):
            if pair.cut:
                continue  # the route is dead: the bytes go nowhere
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
