"""The outgoing policy fed the clock as numbers: the token bucket's pacing, the echo ledger
(which lines an echo, a refusal or a PING barrier settles), and when silence means a PING or
giving up. No socket, no waiting."""

from __future__ import annotations

import irc.client
import pytest

from bridges.irc.lines import Line, join, notice, privmsg
from bridges.irc.outgoing import EchoLedger, Keepalive, OutLine, Silence, TokenBucket

# ---- the token bucket ---------------------------------------------------------------------------

# (rate, burst, times lines are offered) -> which were written then (the rest wait)
PACING = [
    (2.0, 3, [0, 0, 0, 0], [True, True, True, False]),       # the burst, then nothing at once
    (2.0, 3, [0, 0, 0, 0.5], [True, True, True, True]),      # half a second later: one token
    (2.0, 1, [0, 0.2, 0.4, 0.6], [True, False, False, True]),
    (2.0, 2, [0, 0, 100, 100, 100], [True, True, True, True, False]),  # refilled up to the burst only
]


@pytest.mark.parametrize(("rate", "burst", "times", "written"), PACING)
def test_a_burst_then_the_rate(rate: float, burst: int, times: list[float], written: list[bool]) -> None:
    bucket = TokenBucket(rate, burst, now=0)
    assert [bucket.take(now) for now in times] == written


def test_the_wait_is_until_the_next_token() -> None:
    bucket = TokenBucket(4.0, 1, now=0)
    assert bucket.take(0)
    assert not bucket.take(0.1)
    assert bucket.wait() == pytest.approx(0.15)
    assert bucket.take(0.25)


def test_a_rate_of_zero_does_not_pace() -> None:
    assert not TokenBucket(0, 1, now=0).paces
    assert TokenBucket(0.5, 1, now=0).paces


# ---- the echo ledger ----------------------------------------------------------------------------

ME = "Bridge[m]!i@host"


def event(kind: str, source: str, target: str, *arguments: str) -> irc.client.Event:
    return irc.client.Event(kind, irc.client.NickMask(source), target, list(arguments))


def ledger_with(*lines: Line, now: float = 0) -> tuple[EchoLedger, list[OutLine]]:
    ledger = EchoLedger(patience=3.0)
    written = [OutLine(line) for line in lines]
    for line in written:
        assert ledger.written(line, now) == []
    return ledger, written


WRITTEN = (privmsg("#c", "one"), privmsg("#d", "two"), notice("#c", "three"), privmsg("#c", "four"))

# (name, event, own source?, texts settled, swallowed, texts left unsettled)
HEARD = [
    ("an echo settles the oldest line to its target", event("pubmsg", ME, "#c", "one"), True,
     ["PRIVMSG #c :one"], True, ["PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("the target is matched as rfc1459 folds it", event("pubmsg", ME, "#D", "two"), True,
     ["PRIVMSG #d :two"], True, ["PRIVMSG #c :one", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("an echo to a target we cannot match takes the oldest", event("pubnotice", ME, "#elsewhere", "x"), True,
     ["PRIVMSG #c :one"], True, ["PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("a refusal settles that target's line and is news", event("cannotsendtochan", "srv", "n", "#d", "Cannot send"),
     False, ["PRIVMSG #d :two"], False, ["PRIVMSG #c :one", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("a refusal for a target we did not write to settles nothing",
     event("nosuchnick", "srv", "n", "ghost", "No such nick"), False,
     [], False, ["PRIVMSG #c :one", "PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("someone else's line is news and settles nothing", event("pubmsg", "alice!a@h", "#c", "one"), False,
     [], False, ["PRIVMSG #c :one", "PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("an ACTION's second event settles nothing more", event("action", ME, "#c", "waves"), True,
     [], True, ["PRIVMSG #c :one", "PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
    ("a PONG that is no barrier of ours is news", event("pong", "srv", "srv", "srv", "keepalive-1"), False,
     [], False, ["PRIVMSG #c :one", "PRIVMSG #d :two", "NOTICE #c :three", "PRIVMSG #c :four"]),
]


@pytest.mark.parametrize(("heard", "own", "settled", "swallowed", "left"), [case[1:] for case in HEARD],
                         ids=[case[0] for case in HEARD])
def test_what_an_event_settles(heard: irc.client.Event, own: bool, settled: list[str], swallowed: bool,
                               left: list[str]) -> None:
    ledger, _written = ledger_with(*WRITTEN)
    outcome = ledger.hear(heard, own=own)
    assert [line.text for line in outcome.settled] == settled
    assert outcome.swallowed is swallowed
    assert [line.text for line in ledger] == left


def test_only_privmsg_and_notice_are_echoed() -> None:
    assert EchoLedger.tracks(privmsg("#c", "x"))
    assert EchoLedger.tracks(notice("#c", "x"))
    assert not EchoLedger.tracks(join("#c"))


def test_a_ping_barrier_settles_the_lines_written_before_it() -> None:
    ledger, _written = ledger_with(privmsg("#c", "one"), privmsg("#c", "two"), now=10)
    assert ledger.barrier_due(12.9) is None  # not waited long enough
    barrier = ledger.barrier_due(13.0)
    assert barrier is not None
    assert barrier.text == "PING :bk-echo-2"
    ledger.barrier_sent()
    assert ledger.barrier_due(20) is None  # one barrier at a time
    ledger.written(OutLine(privmsg("#c", "three")), now=13.5)  # after the barrier
    assert ledger.hear(event("pong", "srv", "srv", "srv", "bk-echo-1"), own=False) == ([], True, 0)  # not ours
    heard = ledger.hear(event("pong", "srv", "srv", "srv", "bk-echo-2"), own=False)
    assert ([line.text for line in heard.settled], heard.swallowed, heard.given_up) == (
        ["PRIVMSG #c :one", "PRIVMSG #c :two"], True, 2)
    assert [line.text for line in ledger] == ["PRIVMSG #c :three"]


def test_a_disconnect_forgets_the_barrier_and_take_all_empties_the_ledger() -> None:
    ledger, written = ledger_with(privmsg("#c", "one"), privmsg("#c", "two"))
    assert ledger.barrier_due(3) is not None
    ledger.barrier_sent()
    ledger.hear(event("disconnect", "srv", "srv", "reset"), own=False)
    assert ledger.hear(event("pong", "srv", "srv", "srv", "bk-echo-2"), own=False).settled == []
    assert ledger.take_all() == written
    assert not ledger


def test_a_server_that_never_echoes_cannot_grow_the_ledger_without_bound() -> None:
    ledger = EchoLedger(limit=2)
    lines = [OutLine(privmsg("#c", str(n))) for n in range(3)]
    assert ledger.written(lines[0], 0) == []
    assert ledger.written(lines[1], 0) == []
    assert ledger.written(lines[2], 0) == [lines[0]]


# ---- keepalive ----------------------------------------------------------------------------------

# keepalive 60 s, the last word heard at 0: (when checked, heard again before?) -> what to do
SILENCE = [
    ([(15, False), (59, False), (60, False), (75, False), (119, False), (120, False)],
     [None, None, Silence.PING, None, None, Silence.GIVE_UP]),
    ([(60, False), (61, True), (121, False), (125, False)],   # the server answered: silence counts again
     [Silence.PING, None, Silence.PING, None]),
]


@pytest.mark.parametrize(("checks", "actions"), SILENCE)
def test_silence_means_a_ping_then_giving_up(checks: list[tuple[float, bool]], actions: list[Silence | None]) -> None:
    keepalive = Keepalive(60, now=0)
    assert keepalive.poll_interval == 15
    done = []
    for now, heard in checks:
        if heard:
            keepalive.heard(now)
        done.append(keepalive.check(now))
    assert done == actions
