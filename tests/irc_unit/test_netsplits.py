"""Netsplits (``netsplits.py``): a QUIT storm with split-style reasons withholds the leaves, a
rejoin within the window restores silently, after the window the leaves go. The clock is a number."""

from __future__ import annotations

import pytest

from bridgekit import ChatID, MessageID, RemoteMember, RemoteMessage, RemoteUserID
from bridges.irc.netsplits import Netsplits, is_split_reason


def member(chat: str, nick: str, membership: str, reason: str | None = None) -> RemoteMember:
    return RemoteMember(ChatID(chat), RemoteUserID(nick), membership, reason=reason, change_id="1")


@pytest.mark.parametrize(("reason", "split"), [
    ("irc.east.example irc.west.example", True),
    ("*.net *.split", True),
    ("hub.example.net leaf2.example.net", True),
    ("Quit: irc.east.example irc.west.example", False),
    ("Quit: bye", False),
    ("Ping timeout: 120 seconds", False),
    ("irc.east.example", False),
    ("irc.east.example irc.west.example extra", False),
    ("", False),
    (None, False),
])
def test_a_split_reason_is_two_server_names_and_nothing_else(reason: str | None, split: bool) -> None:
    assert is_split_reason(reason) is split


def test_a_split_withholds_the_leaves_and_a_rejoin_within_the_window_restores_silently() -> None:
    splits = Netsplits(window_s=600)
    reason = "irc.east.example irc.west.example"
    quit_events = [member("#a", "bob", "leave", reason), member("#b", "bob", "leave", reason)]
    sifted = splits.sift("quit", reason, quit_events, now=0.0)
    assert sifted.pass_on == []  # no leave in Matrix
    assert sifted.away == ["bob"]  # shown offline once, however many channels
    first = splits.sift("join", None, [member("#a", "bob", "join")], now=120.0)
    assert first.pass_on == []
    assert first.back == []
    second = splits.sift("join", None, [member("#b", "bob", "join")], now=121.0)
    assert second.pass_on == []
    assert second.back == ["bob"]
    assert splits.expired(10_000.0) == []


def test_after_the_window_the_withheld_leaves_go() -> None:
    splits = Netsplits(window_s=600)
    reason = "*.net *.split"
    leave = member("#a", "carol", "leave", reason)
    splits.sift("quit", reason, [leave], now=0.0)
    assert splits.expired(599.0) == []
    assert splits.expired(600.0) == [leave]
    late = splits.sift("join", None, [member("#a", "carol", "join")], now=700.0)
    assert late.pass_on == [member("#a", "carol", "join")]  # she left; now she joins again


def test_an_ordinary_quit_and_other_events_pass_on_and_a_window_of_0_turns_it_off() -> None:
    splits = Netsplits(window_s=600)
    said = RemoteMessage(ChatID("#a"), MessageID("m1"), RemoteUserID("dave"), "hi")
    ordinary = splits.sift("quit", "Quit: bye", [member("#a", "dave", "leave", "Quit: bye"), said], now=0.0)
    assert ordinary.pass_on == [member("#a", "dave", "leave", "Quit: bye"), said]
    off = Netsplits(window_s=0)
    assert off.sift("quit", "a.example b.example", [member("#a", "e", "leave")], now=0.0).pass_on == [
        member("#a", "e", "leave")
    ]
