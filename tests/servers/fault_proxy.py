"""A small HTTP reverse proxy with programmable faults, run in the test's event loop.

Placed between Synapse and a bridge (the appservice side: Synapse pushes transactions through it)
or between a bridge and Synapse (the client side), it forwards requests unchanged until a test
queues faults: answer 500 without forwarding, forward and *then* answer 500 (the bridge stored the
transaction, Synapse retries it: the duplicate case), answer 429 ``M_LIMIT_EXCEEDED``, or drop the
connection. It counts every request per path so tests can wait for "Synapse retried".

HTTP parsing is h11 (already installed with httpx); forwarding is httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import h11
import httpx

# Headers that describe one hop, not the message: never forwarded as-is.
_HOP_HEADERS = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailers", b"transfer-encoding", b"upgrade", b"host", b"content-length",
    }
)
# httpx decodes compressed bodies, so the encoding header no longer describes what we send.
_RESPONSE_DROP = _HOP_HEADERS | {b"content-encoding"}

FaultKind = Literal["fail", "rate_limit", "disconnect"]


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    path_prefix: str | None
    status: int = 500
    body: bytes = b""
    forward_first: bool = False


@dataclass(frozen=True)
class ProxiedRequest:
    """One request seen: what was done with it and what the client got."""

    method: str
    path: str
    forwarded: bool
    status: int | None  # None: the connection was dropped
    fault: FaultKind | None
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    """Listens on ``127.0.0.1:port`` and forwards to ``target_url``."""

    def __init__(self, target_url: str, port: int, *, host: str = "127.0.0.1") -> None:
        self.target_url = target_url.rstrip("/")
        self.host = host
        self.port = port
        self.seen: Counter[str] = Counter()
        self.log: list[ProxiedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._server: asyncio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._changed = asyncio.Condition()
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=120.0))
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            for task in list(self._connections):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._server.wait_closed()
            self._server = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        body: bytes | None = None,
        *,
        forward_first: bool = False,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``n`` (matching) requests with ``status``.

        ``forward_first``: forward to the target first and discard its answer, so the target has
        acted on the request while the client believes it failed.
        """
        default = {"errcode": "M_UNKNOWN", "error": "fault injected by the test proxy"}
        self._faults.append(
            _Fault("fail", n, path_prefix, status, body or json.dumps(default).encode(), forward_first)
        )

    def rate_limit_next(
        self, n: int = 1, retry_after_ms: int = 100, *, path_prefix: str | None = None
    ) -> None:
        """Answer the next ``n`` (matching) requests 429 ``M_LIMIT_EXCEEDED`` without forwarding."""
        body = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": retry_after_ms}
        self._faults.append(_Fault("rate_limit", n, path_prefix, 429, json.dumps(body).encode()))

    def disconnect_next(
        self, n: int = 1, *, forward_first: bool = False, path_prefix: str | None = None
    ) -> None:
        """Close the connection instead of answering the next ``n`` (matching) requests."""
        self._faults.append(_Fault("disconnect", n, path_prefix, forward_first=forward_first))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        return sum(f.remaining for f in self._faults)

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path_prefix is None or path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---- counters -----------------------------------------------------------------------------

    def count(self, path_prefix: str = "") -> int:
        """Requests seen whose path starts with ``path_prefix``."""
        return sum(n for path, n in self.seen.items() if path.startswith(path_prefix))

    async def wait_for_requests(
        self, path_prefix: str, count: int, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> None:
        """Wait until at least ``count`` requests under ``path_prefix`` have been answered."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: sum(1 for r in self.log if r.path.startswith(path_prefix)) >= count
            )

    async def _record(self, entry: ProxiedRequest) -> None:
        self.log.append(entry)
        async with self._changed:
            self._changed.notify_all()

    # ---- HTTP ---------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                head, body = request
                answer = await self._answer(head, body)
                if answer is None:
                    return  # disconnect fault: close without a response
                status, headers, content = answer
                headers.append((b"content-length", str(len(content)).encode()))
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                writer.write(conn.send(h11.Data(data=content)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, h11.LocalProtocolError):
            return
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes] | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, b"".join(chunks)
            else:  # ConnectionClosed (or PAUSED, which cannot happen before EndOfMessage)
                return None

    async def _answer(
        self, head: h11.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        method = head.method.decode()
        target = head.target.decode()
        path = target.split("?", 1)[0]
        self.seen[path] += 1
        fault = self._take_fault(path)
        forwarded: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None
        if fault is None or fault.forward_first:
            forwarded = await self._forward(method, target, head.headers, body)
        answer: tuple[int, list[tuple[bytes, bytes]], bytes] | None
        if fault is None:
            answer = forwarded
        elif fault.kind == "disconnect":
            answer = None
        else:
            answer = (fault.status, [(b"content-type", b"application/json")], fault.body)
        await self._record(
            ProxiedRequest(
                method, path, forwarded is not None, answer[0] if answer else None,
                fault.kind if fault else None,
            )
        )
        return answer

    async def _forward(
        self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self._http is not None
        out = [(k, v) for k, v in headers if k.lower() not in _HOP_HEADERS]
        try:
            resp = await self._http.request(
                method, self.target_url + target, headers=out, content=body
            )
        except httpx.TransportError as exc:
            # The target is down: the client sees what a gateway in front of it would answer.
            error = {"errcode": "M_UNKNOWN", "error": f"fault proxy: target unreachable: {exc!r}"}
            return 502, [(b"content-type", b"application/json")], json.dumps(error).encode()
        back = [(k, v) for k, v in resp.headers.raw if k.lower() not in _RESPONSE_DROP]
        return resp.status_code, back, resp.content
