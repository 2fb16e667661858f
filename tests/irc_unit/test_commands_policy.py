"""The pure rules behind the IRC commands: which channel keys and mode changes are refused, how a
raw line is parsed, how a WHOIS answer reads, and that a channel key is stored only encrypted."""

from __future__ import annotations

from typing import Any

import irc.client
import pytest

from bridgekit import CredentialCipher, UserID
from bridgekit.credentials import generate_key
from bridges.irc import lines
from bridges.irc.channel_keys import ChannelKeys, key_problem
from bridges.irc.commands_query import describe_whois, mode_problem
from bridges.irc.link_approval import answer_of
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords
from bridges.irc.replies import ReplyWaiters


@pytest.mark.parametrize("key", ["s3cret", "a.b-c_d!", "x" * 64])
def test_ordinary_keys_are_accepted(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize("key", ["", "two words", "a,b", ":colon", "x" * 65, "nul\0", "cr\r", "caf\u00e9"])
def test_keys_that_would_change_the_join_are_refused(key: str) -> None:
    assert key_problem(key) is not None


@pytest.mark.parametrize("text", ["PRIVMSG #c :a\rQUIT", "PRIVMSG #c :a\nQUIT", "", ":prefix PRIVMSG #c :x",
                                  "PRIVMSG  #c", "PRI-MSG #c"])
def test_a_raw_line_that_is_not_one_command_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"IRC|raw line"):
        lines.raw(text)


@pytest.mark.parametrize(("modes", "params"), [
    ("+o", ["bob"]), ("-v+m", ["carol"]), ("+b", ["*!*@evil.example.net"]), ("+k", ["key"]),
    ("+b", ["spammer!*@*"]),
])
def test_ordinary_mode_changes_pass(modes: str, params: list[str]) -> None:
    assert mode_problem(modes, params, {"bridge.host"}) is None


@pytest.mark.parametrize(("modes", "params"), [
    ("+b", ["*!*@*"]), ("+b", ["*"]), ("+b", ["*!*@bridge.host"]), ("+b", ["*!?@Bridge.Host"]),
    ("o", ["bob"]), ("+o bob", []), ("+o", ["a,b"]), ("+o", [":x"]), ("+o", ["bob\x02"]), ("+1", []),
])
def test_masks_that_match_everyone_or_every_matrix_user_and_malformed_modes_are_refused(
    modes: str, params: list[str],
) -> None:
    assert mode_problem(modes, params, {"bridge.host"}) is not None


def event(kind: str, *arguments: str) -> irc.client.Event:
    return irc.client.Event(kind, irc.client.NickMask("irc.test"), "me", list(arguments))


def test_a_whois_answer_reads_one_fact_a_line_without_formatting() -> None:
    heard = [
        event("whoisuser", "bob", "~bob", "host.example", "*", "Bob \x02Builder\x02"),
        event("whoischannels", "bob", "@#ops #chat"),
        event("whoisserver", "bob", "irc.test", "Test server"),
        event("whoisaccount", "bob", "bobacct", "is logged in as"),
        event("whoisidle", "bob", "125", "1700000000", "seconds idle, signon time"),
        event("endofwhois", "bob", "End of /WHOIS list."),
    ]
    text = describe_whois("libera", "bob", heard)
    assert text.splitlines() == [
        "bob on libera:",
        "  bob!~bob@host.example (Bob Builder)",
        "  account: bobacct (logged in)",
        "  channels: @#ops #chat",
        "  server: irc.test (Test server)",
        "  idle: 2 min 5 s, connected since 2023-11-14 22:13 UTC",
    ]
    assert describe_whois("libera", "nobody", [event("nosuchnick", "nobody", "No such nick")]) == (
        "Nobody is nobody on libera now.")


async def test_replies_are_collected_up_to_the_end_and_only_from_the_link_that_asked() -> None:
    waiters, link, other = ReplyWaiters(), object(), object()
    sent: list[lines.Line] = []

    def send() -> None:
        sent.append(lines.whois("bob"))
        waiters.hear(other, event("whoisuser", "bob", "x", "y", "*", "elsewhere"))
        waiters.hear(link, event("whoisuser", "carol", "x", "y", "*", "not asked"))
        waiters.hear(link, event("whoisuser", "bob", "b", "h", "*", "Bob"))
        waiters.hear(link, event("endofwhois", "bob", "End"))

    heard = await waiters.ask(link, send, kinds=frozenset({"whoisuser"}),
                              ends=frozenset({"endofwhois"}), about=lambda e: e.arguments[0] == "bob")
    assert [line.text for line in sent] == ["WHOIS bob"]
    assert [(e.type, e.arguments[-1]) for e in heard] == [("whoisuser", "Bob"), ("endofwhois", "End")]
    silent = await waiters.ask(link, lambda: None, kinds=frozenset({"whoisuser"}),
                               ends=frozenset({"endofwhois"}), about=lambda _e: True, timeout=0.05)
    assert silent == []


class MemoryKV:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        self.values[key] = value

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


def network() -> IrcNetwork:
    return IrcNetwork("libera", ghost_for=lambda sender: UserID(f"@_{sender}:x"), sender_of_ghost=lambda _u: None)


async def test_a_channel_key_is_kept_encrypted_and_read_back_at_the_next_start() -> None:
    kv, cipher = MemoryKV(), CredentialCipher(generate_key())
    first = network()
    assert await ChannelKeys(IrcRecords(kv, "libera"), cipher, first).remember("#keyed", "s3cret")
    assert first.join_line("#keyed").text == "JOIN #keyed s3cret"
    assert "s3cret" not in repr(kv.values)

    again = network()
    await ChannelKeys(IrcRecords(kv, "libera"), cipher, again).load()
    assert again.join_line("#keyed").text == "JOIN #keyed s3cret"
    # A sealed key copied to another channel's row is refused, not used there.
    kv.values["chankey:#other"], kv.values["chankeys"] = kv.values["chankey:#keyed"], ["#keyed", "#other"]
    moved = network()
    await ChannelKeys(IrcRecords(kv, "libera"), cipher, moved).load()
    assert moved.join_line("#other").text == "JOIN #other"

    await ChannelKeys(IrcRecords(kv, "libera"), cipher, again).forget("#keyed")
    assert again.join_line("#keyed").text == "JOIN #keyed"


async def test_without_a_credentials_key_a_channel_key_is_used_but_not_kept() -> None:
    kv, net = MemoryKV(), network()
    assert not await ChannelKeys(IrcRecords(kv, "libera"), None, net).remember("#keyed", "s3cret")
    assert net.join_line("#keyed").text == "JOIN #keyed s3cret"
    assert kv.values == {}


@pytest.mark.parametrize(("text", "asked", "meaning"), [
    ("yes", True, True), ("Yes", True, True), ("no", True, False), ("yes #Chat", False, True),
    ("no #chat", False, False), ("yes", False, None), ("yes #other", True, None), ("yes please do", True, None),
    ("maybe", True, None), ("", True, None),
])
def test_an_operators_answer_is_yes_or_no_and_a_bare_one_counts_only_from_those_asked(
    text: str, asked: bool, meaning: bool | None,
) -> None:
    assert answer_of(text, str.lower, "#chat", asked=asked) is meaning
