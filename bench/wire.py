"""Bare HTTP/1.1 over asyncio streams: the benchmark's client, its stub servers and a null server.

The machine under test has two cores, shared by the load generator and the server it measures, so
the client must cost as little CPU as possible: a general HTTP client (httpx) spends more time per
request on header models, URL parsing and its connection pool than this one does in total (the
README has the measured numbers). Requests are pre-built byte strings; the client writes one, reads
the status line, headers and body, and keeps the connection alive, as Synapse's sender does.

Run as a script (``python bench/wire.py --port N``) it is the null server used to measure the
client's own ceiling: it answers every request ``200 {}`` and does nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# The largest response head we accept; anything bigger is not a server we are benchmarking.
_MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The peer broke the HTTP/1.1 framing (or closed the connection mid-response)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    keep_alive: bool


def free_port() -> int:
    """A loopback port nobody listens on right now (the usual bind-to-0 trick; racy but fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_request(
    method: str, path: str, port: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """One complete request, ready to write. Built before the clock starts."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in {"PUT", "POST"}:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def _parse_head(head: bytes) -> tuple[int, dict[str, str], str]:
    """Status code, lower-cased headers and the HTTP version of a response head."""
    try:
        text = head.decode("latin-1")
        status_line, *header_lines = text.split("\r\n")
        version, code, *_ = status_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(code), headers, version
    except ValueError as exc:
        raise HttpError(f"bad response head: {head[:200]!r}") from exc


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers (if any) end with an empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:
        # No framing: the body runs to the end of the connection.
        return await reader.read()
    return await reader.readexactly(int(length))


class Connection:
    """One keep-alive connection; requests go out one at a time, like a homeserver's sender."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                # Small responses must leave at once, not wait for Nagle's timer.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._reader, self._writer

    async def request(self, raw: bytes) -> Response:
        """Send one pre-built request and read its response (reconnecting first if needed)."""
        return await asyncio.wait_for(self._request(raw), self.timeout)

    async def _request(self, raw: bytes) -> Response:
        reader, writer = await self._connect()
        try:
            writer.write(raw)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                raise HttpError("response head too large")
            status, headers, version = _parse_head(head)
            body = await _read_body(reader, headers)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection broke: {exc!r}") from exc
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and not (version == "HTTP/1.0" and connection != "keep-alive")
        if not keep_alive or ("content-length" not in headers and "transfer-encoding" not in headers):
            await self.close()
        return Response(status, body, keep_alive)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


# A stub handler gets method, path and body and returns status and JSON body bytes.
Handler = Callable[[str, str, bytes], Awaitable[tuple[int, bytes]]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


async def _serve_connection(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            status, payload = await handler(method, path, body)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        writer.close()


async def start_server(handler: Handler, port: int) -> asyncio.Server:
    """A tiny keep-alive HTTP/1.1 server on 127.0.0.1 (bodies framed by Content-Length only)."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(handler, reader, writer)

    return await asyncio.start_server(on_connect, "127.0.0.1", port, limit=_MAX_HEAD)


async def _null_handler(method: str, path: str, body: bytes) -> tuple[int, bytes]:
    return 200, b"{}"


async def _serve_null(port: int) -> None:
    server = await start_server(_null_handler, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Null HTTP server: answers every request 200 {}")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve_null(args.port))


if __name__ == "__main__":
    main()
