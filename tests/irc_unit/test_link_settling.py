"""A line sent with ``send_tracked`` is settled (its future done) only once the server echoed or
refused it, or, without echo-message, once it is written; the future goes with the line to the
next connection, a line the server silently drops is settled by a PING barrier, and closing the
connection fails what is left. No server: the connection is a stand-in, the server's answers are
events."""

from __future__ import annotations

import asyncio

import pytest

from bridgekit.testing.waiting import until
from bridges.irc import link as link_module
from bridges.irc.lines import privmsg
from tests.irc_unit.stand_in import connected, echo, server_says


async def test_a_line_is_settled_when_the_server_echoes_or_refuses_it() -> None:
    link, wire = connected(echo=True)
    taken = link.send_tracked(privmsg("#c", "one"))
    refused = link.send_tracked(privmsg("#m", "two"))
    assert wire.lines == ["PRIVMSG #c :one", "PRIVMSG #m :two"]
    await asyncio.sleep(0)
    assert not taken.done()  # written is not enough: the server has not said
    assert not refused.done()
    echo(link, "#c", "one")
    server_says(link, "cannotsendtochan", "server", "Bridge[m]", ["#m", "Cannot send to channel"])
    await asyncio.wait_for(asyncio.gather(taken, refused), 1)


async def test_without_echo_message_a_line_is_settled_once_written_after_the_pacing() -> None:
    link, wire = connected(echo=False, rate=20.0, burst=1)
    first = link.send_tracked(privmsg("#c", "first"))
    paced = link.send_tracked(privmsg("#c", "paced"))
    assert first.done()
    assert not paced.done()  # it waits for the bucket
    await asyncio.wait_for(paced, 1)
    assert wire.lines == ["PRIVMSG #c :first", "PRIVMSG #c :paced"]


async def test_a_line_handed_to_the_next_connection_keeps_its_waiter() -> None:
    old, old_wire = connected(echo=True, rate=1.0, burst=1)
    written = old.send_tracked(privmsg("#c", "written, never echoed"))
    queued = old.send_tracked(privmsg("#c", "still queued"))
    old_wire.up = False  # the connection drops
    new, new_wire = connected(echo=True)
    for line in old.take_unsent():
        new.pass_on(line)
    assert new_wire.lines == ["PRIVMSG #c :written, never echoed", "PRIVMSG #c :still queued"]
    echo(new, "#c", "written, never echoed")
    echo(new, "#c", "still queued")
    await asyncio.wait_for(asyncio.gather(written, queued), 1)


async def test_a_line_the_server_never_echoes_is_settled_by_a_ping_barrier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "ECHO_PATIENCE_S", 0.05)
    link, wire = connected(echo=True)
    dropped = link.send_tracked(privmsg("#c", "filtered by the server, no echo, no error"))
    await until(lambda: "PING :bk-echo-1" in wire.lines)
    server_says(link, "pong", "server", "server", ["bk-echo-0"])  # not our barrier
    await asyncio.sleep(0)
    assert not dropped.done()
    server_says(link, "pong", "server", "server", ["bk-echo-1"])  # every line before it was processed
    await asyncio.wait_for(dropped, 1)
    assert not link.has_unsent


async def test_closing_fails_the_lines_still_unsettled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "CLOSE_GRACE_S", 0.1)
    link, _wire = connected(echo=True, rate=1.0, burst=1)
    echoed = link.send_tracked(privmsg("#c", "one"))
    unechoed = link.send_tracked(privmsg("#c", "two"))
    echo(link, "#c", "one")
    await link.close("bye")
    await asyncio.wait_for(echoed, 1)
    with pytest.raises(ConnectionError):
        await unechoed  # its sender tries it again on another connection
