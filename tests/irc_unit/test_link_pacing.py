"""IrcLink's output pacing (a burst, then a steady rate) and its last line of defence against
CR/LF/NUL, without a server: the connection is a stand-in that records what is written."""

from __future__ import annotations

import asyncio

import pytest

from bridges.irc.link import IrcLink
from tests.irc_unit.stand_in import Recorder


def link(rate: float, burst: int) -> tuple[IrcLink, Recorder]:
    made = IrcLink(host="irc.test", port=6667, tls=False, nick="n", ident="i", realname="r",
                   on_event=lambda _link, _event: None, lines_per_second=rate, burst=burst)
    recorder = Recorder()
    made._connection = recorder  # type: ignore[assignment]
    made._welcome.set()  # registered
    return made, recorder


async def test_a_burst_goes_out_at_once_and_the_rest_follows_in_order() -> None:
    paced, wire = link(rate=50.0, burst=3)
    for number in range(8):
        paced.send(f"PRIVMSG #c :line {number}")
    assert wire.lines == [f"PRIVMSG #c :line {n}" for n in range(3)]  # the burst, written at once
    async with asyncio.timeout(5):
        await paced.flushed()
    assert wire.lines == [f"PRIVMSG #c :line {n}" for n in range(8)]  # then the rest, in order


async def test_without_pacing_every_line_is_written_at_once() -> None:
    unpaced, wire = link(rate=0, burst=1)
    for number in range(100):
        unpaced.send(f"PRIVMSG #c :{number}")
    assert len(wire.lines) == 100


@pytest.mark.parametrize("bad", ["PRIVMSG #c :a\rQUIT", "PRIVMSG #c :a\nQUIT", "PRIVMSG #c :a\0"])
def test_a_line_with_cr_lf_or_nul_is_refused(bad: str) -> None:
    guarded, wire = link(rate=0, burst=1)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        guarded.send(bad)
    assert wire.lines == []


async def test_lines_queued_when_the_connection_drops_are_kept_in_order() -> None:
    paced, wire = link(rate=20.0, burst=2)
    for number in range(6):
        paced.send(f"PRIVMSG #c :line {number}")
    wire.up = False  # the server hangs up with four lines still waiting on the pacing
    async with asyncio.timeout(5):
        await paced.flushed()
    assert wire.lines == ["PRIVMSG #c :line 0", "PRIVMSG #c :line 1"]
    with pytest.raises(ConnectionError):
        paced.send("PRIVMSG #c :line 6")  # refused, so the caller retries it later, after these
    unsent = paced.take_unsent()
    assert [line.text for line in unsent] == [f"PRIVMSG #c :line {n}" for n in range(2, 6)]
    assert not paced.has_unsent
    paced.requeue(unsent)  # a reconnect failed: they go back in front, in order
    assert paced.take_unsent() == unsent

