"""IrcLink's output pacing (a burst, then a steady rate), with the token bucket of
``outgoing.py`` deciding and the link waiting: no server, the connection is a stand-in that
records what is written."""

from __future__ import annotations

import asyncio

import pytest

from bridges.irc.lines import ping, privmsg
from tests.irc_unit.stand_in import connected


async def test_a_burst_goes_out_at_once_and_the_rest_follows_in_order() -> None:
    paced, wire = connected(echo=False, rate=50.0, burst=3)
    for number in range(8):
        paced.send(privmsg("#c", f"line {number}"))
    assert wire.lines == [f"PRIVMSG #c :line {n}" for n in range(3)]  # the burst, written at once
    async with asyncio.timeout(5):
        await paced.flushed()
    assert wire.lines == [f"PRIVMSG #c :line {n}" for n in range(8)]  # then the rest, in order


async def test_without_pacing_every_line_is_written_at_once() -> None:
    unpaced, wire = connected(echo=False, rate=0, burst=1)
    for number in range(100):
        unpaced.send(privmsg("#c", str(number)))
    assert len(wire.lines) == 100


async def test_lines_queued_when_the_connection_drops_are_kept_in_order() -> None:
    paced, wire = connected(echo=False, rate=20.0, burst=2)
    for number in range(6):
        paced.send(privmsg("#c", f"line {number}"))
    wire.up = False  # the server hangs up with four lines still waiting on the pacing
    async with asyncio.timeout(5):
        await paced.flushed()
    assert wire.lines == ["PRIVMSG #c :line 0", "PRIVMSG #c :line 1"]
    with pytest.raises(ConnectionError):
        paced.send(privmsg("#c", "line 6"))  # refused, so the caller retries it later, after these
    unsent = paced.take_unsent()
    assert [line.text for line in unsent] == [f"PRIVMSG #c :line {n}" for n in range(2, 6)]
    assert not paced.has_unsent
    paced.requeue(unsent)  # a reconnect failed: they go back in front, in order
    assert paced.take_unsent() == unsent



async def test_protocol_lines_go_ahead_of_lines_waiting_on_the_pacing() -> None:
    """A keepalive PING (or a NICK) must not wait behind a paste, or the server times the
    connection out meanwhile. (PONG: the ``irc`` reactor answers a PING itself, writing straight
    to the socket; QUIT is written by the connection's ``disconnect``: neither is paced.)"""
    paced, wire = connected(echo=False, rate=1.0, burst=1)
    for number in range(5):
        paced.send(privmsg("#c", f"line {number}"))
    paced.send_now(ping("keepalive"))
    assert wire.lines == ["PRIVMSG #c :line 0", "PING :keepalive"]  # ahead of lines 1-4
    assert paced.has_unsent
