"""The listeners' HTTP protocol: a response written in pieces by the app leaves in one piece when
the pieces come in one turn of the event loop, and streamed pieces still arrive whole and in
order. A real uvicorn server on a loopback socket, read with a plain socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from bridgekit.appservice.http_protocol import JoinedWritesHttpToolsProtocol

STREAMED = [b"first,", b"second,", b"third"]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await receive()
    if scope["path"] == "/stream":  # pieces with a pause between them: each goes out as it comes
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for n, piece in enumerate(STREAMED):
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": piece, "more_body": n < len(STREAMED) - 1})
        return
    body = b'{"path":"' + scope["path"].encode() + b'"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http=JoinedWritesHttpToolsProtocol)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving
        sock.close()


def _request(path: str) -> bytes:
    return f"PUT {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{{}}".encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head, await reader.readexactly(length)


async def test_a_response_written_in_two_pieces_is_received_in_one(port: int) -> None:
    loop = asyncio.get_running_loop()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.setblocking(False)
        for n in range(3):  # and the connection stays usable (keep-alive)
            await loop.sock_sendall(client, _request(f"/transactions/{n}"))
            received = await loop.sock_recv(client, 65536)
            head, _, body = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK"), received
            assert body == f'{{"path":"/transactions/{n}"}}'.encode(), (
                "the status line and headers came without the body: the two writes left apart")


async def test_a_streamed_response_arrives_whole_and_in_order(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request("/stream"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = b""
        while True:  # chunked: size line, data, CRLF; a zero size ends it
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        assert body == b"".join(STREAMED)
        writer.write(_request("/after"))  # the next request on the same connection is answered
        _head, after = await _read_response(reader)
        assert after == b'{"path":"/after"}'
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
