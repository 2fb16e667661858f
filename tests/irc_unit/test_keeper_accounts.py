"""A puppet's connection in a keeper (``held.py``): made with its account and NickServ's settings
from the spec, the listener keeping its members; and a refusal reaching the bridge's
``KeptLink`` as the same :class:`AccountRefused` a connection of its own raises."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import irc.client
import pytest

from bridges.irc.account_login import AccountLogin
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.client import KeeperClient
from bridges.irc.keeper.held import HeldConnection, Outcome
from bridges.irc.keeper.kept_link import KeptLink
from bridges.irc.link import AccountRefused, RegistrationFailed
from tests.irc_unit.stand_in import Recorder, server_says


class Hooks:
    def publish(self, conn: str, event: irc.client.Event) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
    def channels_changed(self, conn: str, channels: list[str]) -> None: ...
    async def already_sent(self, network: str, key: str) -> bool:
        return False

    async def connect_turn(self) -> None: ...


def spec(conn: str, *, members: bool = False) -> p.ConnectionSpec:
    return p.ConnectionSpec(conn, "n", "irc.test", 6667, False, "alice", "a", "alice", members=members,
                            nickserv_nick="Services", nickserv_identify="LOGIN {account} {password}")


def test_a_held_puppet_identifies_with_its_account_and_nickserv_settings() -> None:
    held = HeldConnection(spec("n/~puppet/@alice:x"), Hooks(), password=None,
                          account=AccountLogin("alice", "s3cret", "nickserv"))
    wire = Recorder()
    held.link.attach(wire)
    assert [line.text for line in held.link.state.opening()] == ["CAP LS 302"]  # before NICK/USER
    server_says(held.link, "cap", "server", "*", ["LS", "multi-prefix"])
    server_says(held.link, "welcome", "server", "alice", ["Welcome"])
    assert "PRIVMSG Services :LOGIN alice s3cret" in wire.lines
    assert not held.link.state.ready  # registered, not yet identified: the open is not answered yet
    server_says(held.link, "privnotice", "Services!s@services", "alice", ["You are now identified for alice."])
    assert held.link.state.ready


def test_the_held_listener_keeps_every_member_and_a_user_connection_only_itself() -> None:
    for members, expected in ((True, {"bob", "alice"}), (False, {"alice"})):
        held = HeldConnection(spec("n/~bot", members=members), Hooks(), password=None)
        held.link.attach(Recorder())
        server_says(held.link, "welcome", "server", "alice", ["Welcome"])
        server_says(held.link, "join", "alice!a@h", "#room", [])
        server_says(held.link, "namreply", "server", "alice", ["=", "#room", "bob alice"])
        assert set(held.link.state.channels["#room"].members) == expected


class AnsweringClient:
    """The bridge's end of the streams, answering ``open`` as the keeper did."""

    keeper_id = "k"
    paired = True

    def __init__(self, result: p.Result) -> None:
        self.result = result

    def command(self, op: p.Op, conn: str, data: dict[str, Any], *, answer: bool = True) -> asyncio.Future[p.Result]:
        done: asyncio.Future[p.Result] = asyncio.get_running_loop().create_future()
        done.set_result(self.result)
        return done


async def test_a_refusal_in_the_keeper_is_an_account_refused_with_the_servers_reason() -> None:
    refused = p.Result("r1", False, "SASL: Authentication failed", {"refused": True})
    link = KeptLink(cast(KeeperClient, AnsweringClient(refused)), spec("n/~login/@alice:x"), persist=True, timeout=5)
    with pytest.raises(AccountRefused, match=r"^SASL: Authentication failed$"):
        await link.connect()
    failed = p.Result("r1", False, "no route to host")
    link = KeptLink(cast(KeeperClient, AnsweringClient(failed)), spec("n/~puppet/@alice:x"), persist=True, timeout=5)
    with pytest.raises(RegistrationFailed) as raised:
        await link.connect()
    assert not isinstance(raised.value, AccountRefused)  # may be tried again: the account was not refused
