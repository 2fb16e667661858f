"""Netsplits (``netsplits.py``): a QUIT storm with split-style reasons withholds the leaves, a
rejoin within the window restores silently, after the window the leaves go. The clock is a number."""

from __future__ import annotations

import pytest

from bridgekit import ChatID, MessageID, RemoteMember, RemoteMessage, RemoteUserID
from bridges.irc.netsplits import BATCH_OPEN_S, MAX_OPEN_BATCHES, Netsplits, SplitBatches, is_split_reason


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


# ---- IRCv3 netsplit batches (``SplitBatches``) -------------------------------------------------

HUB = "hub.example.net"
QUIT_IN_BATCH = "Remote host closed the connection"  # a reason that says nothing of a split


def test_a_quit_in_a_netsplit_batch_is_a_splits_whatever_its_reason() -> None:
    batches, splits = SplitBatches(), Netsplits(window_s=600)
    batches.heard(HUB, "+x1", ["netsplit", HUB, "leaf.example.net"], now=0.0)
    leave = member("#a", "bob", "leave", QUIT_IN_BATCH)
    sifted = splits.sift("quit", QUIT_IN_BATCH, [leave], 1.0, in_split_batch=batches.is_netsplit("x1", 1.0))
    assert sifted.pass_on == []
    assert sifted.away == ["bob"]
    batches.heard(HUB, "-x1", [], now=1.0)
    assert not batches.is_netsplit("x1", 1.0)  # closed: a later quit with that tag is an ordinary one
    # The return (a netjoin batch, or not): the JOIN restores silently, as any JOIN of a withheld user.
    batches.heard(HUB, "+y1", ["netjoin", HUB, "leaf.example.net"], now=120.0)
    back = splits.sift("join", None, [member("#a", "bob", "join")], 120.0, in_split_batch=False)
    assert back.pass_on == []
    assert back.back == ["bob"]


@pytest.mark.parametrize(("source", "marker", "arguments"), [
    ("mallory!m@host.example", "+x1", ["netsplit", HUB, "leaf.example.net"]),  # a user, not a server
    (None, "+x1", ["netsplit", HUB, "leaf.example.net"]),
    (HUB, "+", ["netsplit", HUB, "leaf.example.net"]),  # no reference
    (HUB, "+" + "x" * 65, ["netsplit", HUB, "leaf.example.net"]),  # too long
    (HUB, "+x\x011", ["netsplit", HUB, "leaf.example.net"]),  # a control character
    (HUB, "x1", ["netsplit", HUB, "leaf.example.net"]),  # neither + nor -
    (HUB, "+x1", ["netsplit", HUB]),  # one server named
    (HUB, "+x1", ["chathistory", "#a"]),  # another type
    (HUB, "+x1", ["netjoin", HUB, "leaf.example.net"]),  # a return, not a split
])
def test_a_batch_that_is_not_a_servers_well_formed_netsplit_makes_no_quit_a_splits(
    source: str | None, marker: str, arguments: list[str],
) -> None:
    batches = SplitBatches()
    batches.heard(source, marker, arguments, now=0.0)
    assert not batches.is_netsplit(marker[1:] or None, 1.0)
    assert len(batches) == 0


def test_a_batch_never_closed_or_opened_again_is_bounded_and_its_leaves_still_go_after_the_window() -> None:
    batches, splits = SplitBatches(), Netsplits(window_s=600)
    batches.heard(HUB, "+x1", ["netsplit", HUB, "leaf.example.net"], now=0.0)
    batches.heard(HUB, "+x1", ["netsplit", HUB, "leaf.example.net"], now=BATCH_OPEN_S - 1)  # again: not renewed
    assert batches.is_netsplit("x1", BATCH_OPEN_S - 1)
    assert not batches.is_netsplit("x1", BATCH_OPEN_S)  # never closed: over after BATCH_OPEN_S all the same
    late = member("#a", "carol", "leave", QUIT_IN_BATCH)
    assert splits.sift("quit", QUIT_IN_BATCH, [late], BATCH_OPEN_S,
                       in_split_batch=batches.is_netsplit("x1", BATCH_OPEN_S)).pass_on == [late]
    # A leave withheld in a batch goes once the window has passed, as any split's.
    batches.heard(HUB, "+x2", ["netsplit", HUB, "leaf.example.net"], now=100.0)
    leave = member("#a", "dave", "leave", QUIT_IN_BATCH)
    splits.sift("quit", QUIT_IN_BATCH, [leave], 100.0, in_split_batch=batches.is_netsplit("x2", 100.0))
    assert splits.expired(699.0) == []
    assert splits.expired(700.0) == [leave]
    # However many a server opens and never closes, only MAX_OPEN_BATCHES are kept: the oldest go.
    for n in range(MAX_OPEN_BATCHES + 5):
        batches.heard(HUB, f"+s{n}", ["netsplit", HUB, "leaf.example.net"], now=200.0 + n)
    assert len(batches) == MAX_OPEN_BATCHES
    assert not batches.is_netsplit("s0", 230.0)
    assert batches.is_netsplit(f"s{MAX_OPEN_BATCHES + 4}", 230.0)
