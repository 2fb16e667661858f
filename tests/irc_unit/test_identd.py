"""identd (RFC 1413) over a real socket: the ident of the bridge connection with the two ports
asked about, NO-USER for any other, and hostile input closed without harm."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bridges.irc.identd import MAX_QUERIES, IdentListener, answer, lookup_in, parse_query, serve


class FakeLink:
    def __init__(self, ident: str, ends: tuple[int, str, int] | None) -> None:
        self.ident = ident
        self._ends = ends

    def endpoints(self) -> tuple[int, str, int] | None:
        return self._ends


LINKS = [FakeLink("bridge", (40001, "127.0.0.1", 6667)), FakeLink("alice1a2b3", (40002, "127.0.0.1", 6667)),
         FakeLink("gone", None)]


async def ask(listener: IdentListener, *lines: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    for line in lines:
        writer.write(line)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[IdentListener]:
    made = IdentListener("127.0.0.1", 0, timeout=0.5)
    await made.register("net", lookup_in(lambda: LINKS))
    yield made
    await made.unregister("net")


def test_queries_are_two_ports_and_answers_follow_rfc_1413() -> None:
    assert parse_query(" 40002 ,6667 ") is not None
    assert parse_query("40002, 6667, 1") is None
    assert parse_query("0, 6667") is None
    assert parse_query("70000, 6667") is None
    assert answer("40002,6667", "alice1a2b3") == "40002, 6667 : USERID : UNIX : alice1a2b3\r\n"
    assert answer("40003,6667", None) == "40003, 6667 : ERROR : NO-USER\r\n"
    assert answer("hello", None) == "0, 0 : ERROR : INVALID-PORT\r\n"


async def test_the_listener_names_the_connection_with_both_ports_and_no_other(listener: IdentListener) -> None:
    said = await ask(listener, b"40002 , 6667\r\n", b"40001,6667\n", b"40002, 6697\r\n", b"50000, 6667\r\n")
    assert said.decode().splitlines() == [
        "40002, 6667 : USERID : UNIX : alice1a2b3",
        "40001, 6667 : USERID : UNIX : bridge",
        "40002, 6697 : ERROR : NO-USER",  # the right local port to another server: not ours to say
        "50000, 6667 : ERROR : NO-USER",
    ]


async def test_garbage_long_lines_silence_and_floods_end_the_connection_and_the_listener_goes_on(
    listener: IdentListener,
) -> None:
    assert await ask(listener, b"\x00\xff; rm -rf /\r\n") == b"0, 0 : ERROR : INVALID-PORT\r\n"
    assert await ask(listener, b"4" * 5000) == b""  # no newline within the limit: closed unanswered
    assert await ask(listener) == b""  # nothing said: closed after the timeout
    flood = await ask(listener, b"40002,6667\r\n" * (MAX_QUERIES + 3))
    assert flood.count(b"USERID") == MAX_QUERIES
    assert b"alice1a2b3" in await ask(listener, b"40002,6667\r\n")  # still answering


class Bridge:
    """Stands for the bridge (its ``ctx.remote``) that owns the listeners."""


async def test_a_port_that_cannot_be_listened_on_is_logged_and_the_network_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    taken = IdentListener("127.0.0.1", 0)
    await taken.register("first", lookup_in(lambda: LINKS))
    try:
        await serve(Bridge(), "127.0.0.1", taken.port, "second", lookup_in(lambda: LINKS))  # no exception
        assert "identd cannot listen on 127.0.0.1" in caplog.text
    finally:
        await taken.unregister("first")
