"""Reconnect policy (``reconnects.py``): pacing across a network's connections, backoff per
connection, what a server's last words mean. The clock is a number."""

from __future__ import annotations

import irc.client
import pytest

from bridges.irc.connection_state import ConnectionState
from bridges.irc.reconnects import Backoff, ConnectPacer, Refusal, read_refusal


def test_after_a_burst_connections_are_spread_at_the_network_rate() -> None:
    pacer = ConnectPacer(rate=2.0, burst=3, now=0.0)
    waits = [pacer.reserve(0.0) for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]  # 300 users after a restart: 2 a second


def test_the_bucket_refills_with_time_but_never_above_the_burst() -> None:
    pacer = ConnectPacer(rate=1.0, burst=2, now=0.0)
    assert [pacer.reserve(0.0) for _ in range(2)] == [0.0, 0.0]
    assert pacer.reserve(1.0) == 0.0  # one token came back
    assert pacer.reserve(1.0) == 1.0
    later = ConnectPacer(rate=1.0, burst=2, now=0.0)
    assert [later.reserve(1000.0) for _ in range(3)] == [0.0, 0.0, 1.0]


def test_a_rate_of_zero_does_not_pace() -> None:
    pacer = ConnectPacer(rate=0, burst=1, now=0.0)
    assert all(pacer.reserve(0.0) == 0.0 for _ in range(100))


def test_backoff_doubles_with_jitter_up_to_the_cap_and_starts_again_once_connected() -> None:
    low = Backoff(base=2.0, cap=30.0, draw=lambda: 0.0)
    high = Backoff(base=2.0, cap=30.0, draw=lambda: 1.0)
    assert [low.next_wait() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert [high.next_wait() for _ in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    low.reset()
    assert low.next_wait() == 1.0


def test_a_throttled_connection_waits_at_least_a_minute_and_a_banned_one_stops() -> None:
    backoff = Backoff(base=2.0, cap=300.0, draw=lambda: 0.0)
    assert backoff.next_wait(Refusal.THROTTLED) == 60.0
    assert backoff.next_wait(Refusal.BANNED) is None


@pytest.mark.parametrize(("said", "meaning"), [
    ("Closing link: (bob@127.0.0.1) [Throttled: Reconnecting too fast]", Refusal.THROTTLED),
    ("Closing link: (bob@127.0.0.1) [Too many connections from your IP]", Refusal.THROTTLED),
    ("Closing Link: 127.0.0.1 (Too many host connections (global))", Refusal.THROTTLED),
    ("Closing link: (bob@127.0.0.1) [K-Lined: spam]", Refusal.BANNED),
    ("Closing Link: bob[127.0.0.1] (G-lined)", Refusal.BANNED),
    ("You are banned from this server- spam", Refusal.BANNED),
    ("Closing link: (bob@127.0.0.1) [Ping timeout: 120 seconds]", Refusal.NONE),
    ("Closing link: (bob@127.0.0.1) [Server shutdown]", Refusal.NONE),
    (None, Refusal.NONE),
])
def test_the_servers_last_words_are_read(said: str | None, meaning: Refusal) -> None:
    assert read_refusal(said) is meaning


def test_a_k_line_in_the_servers_error_is_read_as_a_ban() -> None:
    """The ``irc`` package gives ERROR's text as the event's target, not its arguments (as it
    parses ``ERROR :Closing link: ...`` from InspIRCd): the connection keeps it as its failure."""
    state = ConnectionState("bridge")
    state.hear(irc.client.Event("error", irc.client.NickMask("irc.test"),
                                "Closing link: (bridge@127.0.0.1) [K-lined: no bridges here]", []))
    assert state.failure == "Closing link: (bridge@127.0.0.1) [K-lined: no bridges here]"
    assert read_refusal(state.failure) is Refusal.BANNED
