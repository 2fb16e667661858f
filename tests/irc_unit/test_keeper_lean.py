"""What a keeper holds and publishes per connection (``bridges/irc/lean.py``, ``keeper/held.py``):
pure, no socket and no Redis (events are handed to the held connection as its link would)."""

from __future__ import annotations

import asyncio

import irc.client
import pytest

from bridges.irc.connection_state import ConnectionState
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.held import HeldConnection, Outcome
from bridges.irc.lean import LazyEvent


class Hooks:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, conn: str, event: irc.client.Event) -> None:
        self.published.append((event.type, str(event.source)))

    def outcome(self, outcome: Outcome) -> None:
        pass

    def channels_changed(self, conn: str, channels: list[str]) -> None:
        pass

    async def already_sent(self, network: str, key: str) -> bool:
        return False

    async def connect_turn(self) -> None:
        pass


def held(members: bool) -> tuple[HeldConnection, Hooks]:
    hooks = Hooks()
    spec = p.ConnectionSpec(p.connection_id("net", None if members else "@alice:hs", "bot" if members else "user"),
                            "net", "127.0.0.1", 6667, False, "alice", "alice", "alice", members=members)
    connection = HeldConnection(spec, hooks, password=None)
    return connection, hooks


def hear(connection: HeldConnection, kind: str, source: str, target: str, *arguments: str) -> None:
    event = irc.client.Event(kind, irc.client.NickMask(source), target, list(arguments))
    connection.link.state.hear(event)  # as the link does before handing the event on
    connection._heard(connection.link, event)


def in_channel(connection: HeldConnection) -> None:
    hear(connection, "welcome", "irc.test", "alice", "Welcome")
    hear(connection, "join", "alice!a@h", "#room")


def test_a_users_connection_publishes_its_own_doings_and_private_messages_not_the_channels_chatter() -> None:
    connection, hooks = held(members=False)
    in_channel(connection)
    hooks.published.clear()
    for kind, source, target, arguments in [
        ("pubmsg", "bob!b@h", "#room", ("hi all",)), ("join", "carol!c@h", "#room", ()),
        ("part", "carol!c@h", "#room", ()), ("quit", "bob!b@h", "", ("bye",)), ("nick", "dan!d@h", "dan2", ()),
        ("action", "bob!b@h", "#room", ("waves",)), ("kick", "op!o@h", "#room", ("bob", "out")),
        ("pong", "irc.test", "irc.test", ("keepalive-1",)), ("all_raw_messages", "irc.test", "", (":x PRIVMSG",)),
    ]:
        hear(connection, kind, source, target, *arguments)
    assert hooks.published == []
    hear(connection, "privmsg", "bob!b@h", "alice", "psst")
    hear(connection, "action", "bob!b@h", "alice", "nudges you")
    hear(connection, "nick", "alice!a@h", "alice_")
    hear(connection, "kick", "op!o@h", "#room", "alice_", "out")
    assert hooks.published == [("privmsg", "bob!b@h"), ("action", "bob!b@h"), ("nick", "alice!a@h"),
                                ("kick", "op!o@h")]


def test_the_listeners_connection_publishes_everything_said_and_done_in_its_channels() -> None:
    connection, hooks = held(members=True)
    in_channel(connection)
    hooks.published.clear()
    hear(connection, "pubmsg", "bob!b@h", "#room", "hi all")
    hear(connection, "join", "carol!c@h", "#room")
    hear(connection, "quit", "bob!b@h", "", "bye")
    hear(connection, "pong", "irc.test", "irc.test", "keepalive-1")
    assert hooks.published == [("pubmsg", "bob!b@h"), ("join", "carol!c@h"), ("quit", "bob!b@h")]


def test_connections_to_one_server_share_one_read_only_isupport() -> None:
    states = [ConnectionState(f"u{n}") for n in range(3)]
    for state in states:
        state.hear(irc.client.Event("featurelist", "irc.test", "u", ["CHANTYPES=#", "NICKLEN=30", "are supported"]))
        state.hear(irc.client.Event("featurelist", "irc.test", "u", ["CASEMAPPING=ascii", "are supported"]))
    assert states[0].isupport == {"CHANTYPES": "#", "NICKLEN": "30", "CASEMAPPING": "ascii"}
    assert states[0].isupport is states[1].isupport is states[2].isupport
    with pytest.raises(TypeError):
        states[0].isupport["NICKLEN"] = "9"  # type: ignore[index]
    states[2].hear(irc.client.Event("featurelist", "irc.test", "u", ["NICKLEN=9", "are supported"]))
    assert (states[2].nicklen, states[0].nicklen) == (9, 30)  # one learning more changes only its own


async def test_a_lazy_event_wakes_its_waiters_and_is_cleared_as_an_asyncio_event() -> None:
    event = LazyEvent()
    waiters = [asyncio.create_task(event.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True]
    event.clear()
    late = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    late.cancel()  # a cancelled waiter leaves nothing behind
    with pytest.raises(asyncio.CancelledError):
        await late
    assert not event.is_set()
    event.set()
    assert await event.wait() is True
