"""IrcLink's output pacing (a burst, then a steady rate) and its last line of defence against
CR/LF/NUL, without a server: the connection is a stand-in that records what is written."""

from __future__ import annotations

import asyncio

import pytest

from bridges.irc.link import IrcLink


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def is_connected(self) -> bool:
        return True

    def send_raw(self, line: str) -> None:
        self.lines.append(line)


def link(rate: float, burst: int) -> tuple[IrcLink, Recorder]:
    made = IrcLink(host="irc.test", port=6667, tls=False, nick="n", ident="i", realname="r",
                   on_event=lambda _link, _event: None, lines_per_second=rate, burst=burst)
    recorder = Recorder()
    made._connection = recorder  # type: ignore[assignment]
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
