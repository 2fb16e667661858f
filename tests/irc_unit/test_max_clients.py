"""``max_clients`` in ``user_connections.py`` with stand-in links: Matrix users' own connections
and logged-in users' count together; past the cap a new one is ``UseRelay`` (the core relays the
user); a connection still connecting counts (two at once cannot both pass); a closed one frees
its place; a user's own dropped connection is replaced, not counted twice; 0 means no cap."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from bridgekit import UseRelay, UserID
from bridgekit.testing.waiting import eventually
from bridges.irc.link import IrcLink
from bridges.irc.user_connections import UserConnections
from tests.irc_unit.stand_in import session_setup
from tests.support.contexts import hand_built_context

ALICE, BOB, CAROL = UserID("@alice:example.org"), UserID("@bob:example.org"), UserID("@carol:example.org")


class StandInLink:
    """Connects once ``gate`` is set; ``connecting`` is set when it starts to."""

    def __init__(self, nick: str, gate: asyncio.Event) -> None:
        self.nick, self.gate, self.connected = nick, gate, False
        self.connecting = asyncio.Event()

    async def connect(self) -> None:
        self.connecting.set()
        await self.gate.wait()
        self.connected = True


def connections(max_clients: int) -> tuple[UserConnections, asyncio.Event, list[StandInLink]]:
    setup = session_setup(max_clients=max_clients)
    ctx = hand_built_context("net", setup.settings)
    gate = asyncio.Event()
    gate.set()

    links: list[StandInLink] = []

    def new_link(nick: str, **_: Any) -> IrcLink:
        links.append(StandInLink(nick, gate))
        return cast(IrcLink, links[-1])

    return UserConnections(ctx, setup, new_link), gate, links


async def test_logged_in_users_count_and_past_the_cap_it_is_use_relay() -> None:
    users, _, _ = connections(2)
    users.logged_in = {CAROL: object()}  # carol's login holds one of the two
    await users.open(ALICE, "alice")
    with pytest.raises(UseRelay) as refused:
        await users.open(BOB, "bob")
    assert "limit of 2 connections" in refused.value.reason
    assert "max_clients" in refused.value.reason
    assert set(users.by_user) == {ALICE}


async def test_a_connection_still_connecting_counts() -> None:
    users, gate, links = connections(1)
    gate.clear()
    alice = asyncio.create_task(users.open(ALICE, "alice"))
    await eventually(lambda: links and links[0].connecting.is_set(), what="alice's connection to start")
    with pytest.raises(UseRelay):
        await users.open(BOB, "bob")
    gate.set()
    await alice
    assert set(users.by_user) == {ALICE}


async def test_a_closed_connection_frees_its_place_and_a_dropped_one_is_replaced() -> None:
    users, _, _ = connections(1)
    alice = await users.open(ALICE, "alice")
    cast(StandInLink, alice.link).connected = False  # dropped: her next message makes it again, not a second one
    again = await users.open(ALICE, "alice")
    assert again is not alice
    await users.closed(again)
    assert (await users.open(BOB, "bob")).owner == BOB


async def test_no_cap_by_default() -> None:
    users, _, _ = connections(0)
    for n in range(20):
        await users.open(UserID(f"@u{n}:example.org"), f"u{n}")
    assert len(users.by_user) == 20
