"""``IrcSession.send`` queues a message's lines and hands back their delivery, which finishes only
once every line is settled and records how far a message of several lines got; sent again for the
same event (a replay after a crash), only the lines not yet settled go out. No server: connections
are stand-ins and the server's echoes are events; the network's records are kept in a dict, as the
connector keeps them in its key-value store."""

from __future__ import annotations

import asyncio

import pytest

from bridgekit import ChatID, EventID, OutgoingMessage, SessionKind, UserID
from bridgekit.testing.waiting import until
from bridges.irc.lines import privmsg
from bridges.irc.link import IrcLink
from bridges.irc.records import Progress
from bridges.irc.session import IrcSession, SessionSetup
from tests.irc_unit.stand_in import Recorder, Values, connected, echo, session_setup


def bot(setup: SessionSetup) -> tuple[IrcSession, IrcLink, Recorder]:
    link, wire = connected(echo=True)
    return IrcSession(SessionKind.BOT, link, setup), link, wire


def progress(kv: Values, key: str) -> Progress | None:
    stored = kv.values.get(f"progress:{key}")
    return Progress(stored["lines"], stored["done"]) if stored is not None else None


def said(wire: Recorder) -> list[str]:
    return [line.removeprefix("PRIVMSG #c :") for line in wire.lines if line.startswith("PRIVMSG")]


async def test_a_replayed_message_sends_only_the_lines_not_yet_settled() -> None:
    kv = Values()
    setup = session_setup(kv)
    first, first_link, first_wire = bot(setup)
    saying = asyncio.create_task(first.say("#c", "one\ntwo\nthree\nfour", key="$event"))
    await until(lambda: len(said(first_wire)) == 4)
    echo(first_link, "#c", "one")
    echo(first_link, "#c", "two")
    await until(lambda: (progress(kv, "$event") or Progress([], 0)).done == 2)
    assert not saying.done()  # two lines are still unechoed: the event is not handled yet
    saying.cancel()  # the bridge dies here

    again, again_link, again_wire = bot(setup)  # restarted: a new connection, the same database
    replay = asyncio.create_task(again.say("#c", "one\ntwo\nthree\nfour", key="$event"))
    await until(lambda: len(said(again_wire)) == 2)
    assert said(again_wire) == ["three", "four"]
    echo(again_link, "#c", "three")
    echo(again_link, "#c", "four")
    await asyncio.wait_for(replay, 1)
    assert progress(kv, "$event") == Progress(["one", "two", "three", "four"], 4)

    third, _link, third_wire = bot(setup)  # replayed once more (the handled mark was not yet written)
    await asyncio.wait_for(third.say("#c", "one\ntwo\nthree\nfour", key="$event"), 1)
    assert said(third_wire) == []


def message(text: str, event_id: str) -> OutgoingMessage:
    return OutgoingMessage(chat_id=ChatID("#c"), text=text, html=None, msgtype="m.text", event_id=EventID(event_id),
                           sender=UserID("@alice:example.org"), sender_name="alice")


async def test_send_returns_at_once_and_the_delivery_finishes_when_every_line_is_echoed() -> None:
    kv = Values()
    setup = session_setup(kv)
    session, link, wire = bot(setup)
    accepted = await session.send(message("one\ntwo", "$two-lines"))
    assert said(wire) == ["one", "two"]  # queued and written; the room may move on
    delivered = asyncio.ensure_future(accepted.delivered)
    echo(link, "#c", "one")
    await until(lambda: progress(kv, "$two-lines") is not None)
    assert progress(kv, "$two-lines") == Progress(["one", "two"], 1)
    assert not delivered.done()  # "two" is not echoed yet: the event is not handled
    echo(link, "#c", "two")
    await asyncio.wait_for(delivered, 1)
    assert progress(kv, "$two-lines") == Progress(["one", "two"], 2)


async def test_a_one_line_message_is_delivered_by_its_echo_and_records_nothing() -> None:
    kv = Values()
    setup = session_setup(kv)
    session, link, wire = bot(setup)
    accepted = await session.send(message("hello", "$short"))
    delivered = asyncio.ensure_future(accepted.delivered)
    await asyncio.sleep(0)
    assert said(wire) == ["hello"]
    assert not delivered.done()
    echo(link, "#c", "hello")
    await asyncio.wait_for(delivered, 1)
    assert kv.values == {}  # nothing to resume: the inbox's own mark covers it


async def test_a_message_with_nothing_to_say_is_delivered_at_once() -> None:
    session, _link, wire = bot(session_setup())
    accepted = await session.send(message(" \n \t ", "$blank"))
    await asyncio.wait_for(accepted.delivered, 1)
    assert said(wire) == []


async def test_lines_adopted_by_a_connection_that_drops_too_wait_for_the_next_one() -> None:
    """A reconnect hands the lines of the dead connection on; should the new one drop before it
    has taken them all, the rest (futures and all) stay queued for the next connection: a line
    lost there would leave its message undelivered and its room's progress waiting for ever."""
    kv = Values()
    setup = session_setup(kv)
    old_link, _old_wire = connected(echo=True)
    futures = [old_link.send_tracked(privmsg("#c", text)) for text in ("one", "two", "three")]
    carried = old_link.take_unsent()
    session, new_link, new_wire = bot(setup)
    new_wire.up = False  # dropped while adopting
    with pytest.raises(ConnectionError):
        session.adopt(carried)
    kept = new_link.take_unsent()
    assert [line.text for line in kept] == ["PRIVMSG #c :one", "PRIVMSG #c :two", "PRIVMSG #c :three"]
    assert [line.settled for line in kept] == futures
    assert not any(future.done() for future in futures)
