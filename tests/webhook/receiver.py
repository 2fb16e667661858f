"""A small HTTP server on 127.0.0.1 standing in for what outbound hooks post to (and for an
avatar host): it records each request, answers with a status the test chooses, and can be taken
down and brought back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

# The smallest valid PNG (1x1, transparent): enough for the homeserver to accept it as an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Received] = []
        self.failures: dict[tuple[str, bytes], int] = {}
        """(path, a part of the body) -> how many more such requests to answer 500."""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[Received]:  # noqa: ASYNC109
        """The first ``count`` requests (to ``path``, if given), once that many arrived."""
        def matching() -> list[Received]:
            return [r for r in self.requests if path is None or r.path == path]

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(matching()) >= count)
        return matching()[:count]

    def _status(self, path: str, body: bytes) -> int:
        for (failing_path, part), left in self.failures.items():
            if left > 0 and path == failing_path and part in body:
                self.failures[(failing_path, part)] = left - 1
                return 500
        return self.status

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if path.endswith(".png"):
                status, content_type, payload = 200, "image/png", PNG
            else:
                status, content_type, payload = self._status(path, body), "application/json", b'{"ok":true}'
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
            async with self._arrived:
                self.requests.append(Received(method, path, headers, body, status))
                self._arrived.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
