"""ConnectionState fed event sequences, in the style of ircstates' test vectors: the events as
the ``irc`` package hands them over (type, source, target, arguments), what the connection writes
in answer, whether the bridge hears of each event, and what the state becomes. No socket."""

from __future__ import annotations

from typing import Any

import irc.client
import pytest

from bridges.irc.connection_state import ChannelState, ConnectionState

NICK = "Bridge[m]"
ME = f"{NICK}!bridge@bridge.host"
SERVER = "irc.test"


def event(kind: str, source: str, target: str | None, *arguments: str) -> irc.client.Event:
    return irc.client.Event(kind, irc.client.NickMask(source), target, list(arguments))


def feed(state: ConnectionState, events: list[tuple[str, ...]]) -> tuple[list[str], list[bool]]:
    """Every event in turn: the lines written in answer, and whether each was forwarded."""
    sent: list[str] = []
    forwarded: list[bool] = []
    for kind, source, target, *arguments in events:
        reaction = state.hear(event(kind, source, target or None, *arguments))
        sent += [line.text for line in reaction.send]
        forwarded.append(reaction.forward)
    return sent, forwarded


def taken_nicks(attempt: int) -> str:
    return f"{NICK[:7]}{attempt}"


WELCOME = ("welcome", SERVER, NICK, f"Welcome to the test network {ME}")

# (name, events, lines written in answer, events forwarded to the bridge)
REGISTRATION = [
    ("the welcome asks for the capabilities", [WELCOME], ["CAP REQ :server-time echo-message"], [True]),
    ("a taken nick tries the next, quietly", [
        ("nicknameinuse", SERVER, "*", NICK, "Nickname is already in use"),
        ("erroneusnickname", SERVER, "*", "Bridge[m1", "Erroneous nickname"),
        ("welcome", SERVER, "Bridge[2", "Welcome"),
    ], ["NICK Bridge[1", "NICK Bridge[2", "CAP REQ :server-time echo-message"], [False, False, True]),
    ("once registered, a taken nick is news for the bridge (a NICK command failed)", [
        WELCOME, ("nicknameinuse", SERVER, NICK, "alice", "Nickname is already in use"),
    ], ["CAP REQ :server-time echo-message"], [True, True]),
    ("the server's ERROR is forwarded", [("error", SERVER, "", "Closing link: banned")], [], [True]),
]


@pytest.mark.parametrize(("events", "sent", "forwarded"), [case[1:] for case in REGISTRATION],
                         ids=[case[0] for case in REGISTRATION])
def test_registration(events: list[tuple[str, ...]], sent: list[str], forwarded: list[bool]) -> None:
    state = ConnectionState(NICK, caps=("server-time", "echo-message"), next_nick=taken_nicks)
    assert feed(state, events) == (sent, forwarded)


def test_registration_is_given_up_after_twenty_taken_nicks() -> None:
    state = ConnectionState(NICK, next_nick=taken_nicks)
    refused = ("nicknameinuse", SERVER, "*", NICK, "Nickname is already in use")
    sent, _forwarded = feed(state, [refused] * 20)
    assert sent == [f"NICK {taken_nicks(n)}" for n in range(1, 21)]
    reaction = state.hear(event(*refused))
    assert (reaction.send, reaction.forward, reaction.hang_up) == ((), False, True)
    assert state.failure == f"nick {taken_nicks(20)} is taken"


def test_without_a_nick_chooser_a_taken_nick_fails_registration_at_once() -> None:
    state = ConnectionState(NICK)
    reaction = state.hear(event("nicknameinuse", SERVER, "*", NICK, "in use"))
    assert reaction.hang_up
    assert state.failure == f"nick {NICK} is taken"


def test_the_errors_text_is_why_registration_failed() -> None:
    state = ConnectionState(NICK)
    feed(state, [("error", SERVER, "", "Closing link:", "banned")])
    assert state.failure == "Closing link: banned"
    feed(state, [("error", SERVER, "")])
    assert state.failure == "ERROR from the server"


def test_welcome_capabilities_and_disconnect() -> None:
    state = ConnectionState(NICK, caps=("echo-message",))
    before = state.registered
    feed(state, [("welcome", SERVER, "Bridge[m]_", "Welcome"), ("cap", SERVER, "Bridge[m]_", "ACK", "echo-message")])
    assert (before, state.registered) == (False, True)
    assert state.nick == "Bridge[m]_"  # the nick the server registered, not the one asked for
    echo_before = state.echo
    feed(state, [("disconnect", SERVER, "", "Connection reset")])
    assert (echo_before, state.registered, state.echo) == (True, False, False)  # the next connection negotiates again
    state.connecting()
    assert state.nick == NICK


@pytest.mark.parametrize(("acked", "echo"), [
    (["ACK", "server-time echo-message"], True),
    (["ACK", "echo-message"], True),
    (["ACK", "server-time"], False),
    (["NAK", "echo-message"], False),
    (["LS", "echo-message server-time"], False),
])
def test_echo_message_counts_only_when_acknowledged(acked: list[str], echo: bool) -> None:
    state = ConnectionState(NICK, caps=("echo-message",))
    feed(state, [WELCOME, ("cap", SERVER, NICK, *acked)])
    assert state.echo is echo


# ISUPPORT tokens (the last argument, "are supported by this server", is no token) -> what is known
ISUPPORT: list[tuple[list[str], dict[str, Any]]] = [
    ([], {"casemapping": "rfc1459", "nicklen": None, "chantypes": "#&", "prefix_modes": {"@": "o", "+": "v"}}),
    (["CASEMAPPING=ascii", "NICKLEN=16", "CHANTYPES=#"],
     {"casemapping": "ascii", "nicklen": 16, "chantypes": "#"}),
    (["casemapping=RFC7613", "PREFIX=(qaohv)~&@%+"],
     {"casemapping": "rfc7613", "prefix_modes": {"~": "q", "&": "a", "@": "o", "%": "h", "+": "v"}}),
    (["NICKLEN=", "SAFELIST"], {"nicklen": None}),
]


@pytest.mark.parametrize(("tokens", "known"), ISUPPORT)
def test_isupport(tokens: list[str], known: dict[str, Any]) -> None:
    state = ConnectionState(NICK)
    feed(state, [WELCOME, ("featurelist", SERVER, NICK, *tokens, "are supported by this server")])
    assert {name: getattr(state, name) for name in known} == known
    assert "are supported by this server" not in " ".join(state.isupport)


def test_casemapping_decides_what_is_one_name() -> None:
    state = ConnectionState(NICK)
    assert state.fold("[Bot]") == state.fold("{bot}")
    feed(state, [("featurelist", SERVER, NICK, "CASEMAPPING=ascii", "are supported")])
    assert state.fold("[Bot]") != state.fold("{bot}")
    feed(state, [("featurelist", SERVER, NICK, "CASEMAPPING=something-new", "are supported")])
    assert state.fold("[Bot]") == state.fold("{bot}")  # unknown: the widest usual mapping


@pytest.mark.parametrize(("source", "own"), [
    (ME, True), ("bridge{M}!x@y", True), ("alice!a@b", False), (SERVER, False),
])
def test_own_lines_are_known_by_the_nick_as_the_network_folds_it(source: str, own: bool) -> None:
    state = ConnectionState(NICK)
    feed(state, [WELCOME])
    assert state.is_own(irc.client.NickMask(source)) is own


def test_our_nick_follows_our_nick_changes_only() -> None:
    state = ConnectionState(NICK)
    feed(state, [WELCOME, ("nick", "alice!a@b", "alice2"), ("nick", ME, "Bridge2")])
    assert state.nick == "Bridge2"


def snapshot(state: ConnectionState) -> dict[str, tuple[str, dict[str, str], dict[str, str], dict[str, str]]]:
    """Channels as plain data: folded name -> (name, members, member prefix modes, channel modes)."""
    def row(channel: ChannelState) -> tuple[str, dict[str, str], dict[str, str], dict[str, str]]:
        prefixes = {member: "".join(sorted(modes)) for member, modes in channel.prefixes.items()}
        return channel.name, dict(channel.members), prefixes, dict(channel.modes)
    return {folded: row(channel) for folded, channel in state.channels.items()}


JOINED = [WELCOME, ("join", ME, "#Chan"), ("namreply", SERVER, NICK, "=", "#Chan", f"{NICK} @Alice +Bob carol!c@host")]

# (name, events after JOINED, channels afterwards)
CHANNELS: list[tuple[str, list[tuple[str, ...]], dict[str, Any]]] = [
    ("names: members and their prefixes (userhost-in-names too)", [],
     {"#chan": ("#Chan", {"bridge{m}": NICK, "alice": "Alice", "bob": "Bob", "carol": "carol"},
                {"alice": "o", "bob": "v"}, {})}),
    ("join, part, kick and quit of others", [
        ("join", "dave!d@h", "#chan"), ("part", "carol!c@host", "#CHAN", "bye"),
        ("kick", "Alice!a@h", "#chan", "Bob", "out"), ("quit", "dave!d@h", "", "gone"),
    ], {"#chan": ("#Chan", {"bridge{m}": NICK, "alice": "Alice"}, {"alice": "o"}, {})}),
    ("a nick change keeps the member's modes", [("nick", "Alice!a@h", "Alicia")],
     {"#chan": ("#Chan", {"bridge{m}": NICK, "alicia": "Alicia", "bob": "Bob", "carol": "carol"},
                {"alicia": "o", "bob": "v"}, {})}),
    ("member and channel modes, parameters consumed in order", [
        ("mode", "Alice!a@h", "#chan", "+vb-o+kml", "carol", "*!*@spam", "Alice", "sekrit", "10"),
    ], {"#chan": ("#Chan", {"bridge{m}": NICK, "alice": "Alice", "bob": "Bob", "carol": "carol"},
                  {"bob": "v", "carol": "v"}, {"k": "sekrit", "m": "", "l": "10"})}),
    ("modes unset (-l takes no parameter, -k does)", [
        ("mode", "Alice!a@h", "#chan", "+kl", "sekrit", "10"), ("mode", "Alice!a@h", "#chan", "-lk+o", "sekrit", "Bob"),
    ], {"#chan": ("#Chan", {"bridge{m}": NICK, "alice": "Alice", "bob": "Bob", "carol": "carol"},
                  {"alice": "o", "bob": "ov"}, {})}),
    ("our own part, or kick, leaves the channel", [("part", ME, "#chan")], {}),
    ("kicked", [("kick", "Alice!a@h", "#chan", "bridge{m}", "bye")], {}),
    ("a channel we are not in is not tracked", [("join", "eve!e@h", "#other"), ("mode", "x!y@z", "#other", "+m")],
     {"#chan": ("#Chan", {"bridge{m}": NICK, "alice": "Alice", "bob": "Bob", "carol": "carol"},
                {"alice": "o", "bob": "v"}, {})}),
    ("a disconnect leaves every channel", [("disconnect", SERVER, "", "reset")], {}),
]


@pytest.mark.parametrize(("events", "channels"), [case[1:] for case in CHANNELS], ids=[case[0] for case in CHANNELS])
def test_channels(events: list[tuple[str, ...]], channels: dict[str, Any]) -> None:
    state = ConnectionState(NICK, members=True)
    feed(state, [*JOINED, *events])
    assert snapshot(state) == channels


def test_prefixes_follow_the_servers_prefix_token() -> None:
    state = ConnectionState(NICK, members=True)
    feed(state, [WELCOME, ("featurelist", SERVER, NICK, "PREFIX=(qohv)~@%+", "CHANMODES=beI,k,l,imnpst", "ok"),
                 ("join", ME, "#c"), ("namreply", SERVER, NICK, "=", "#c", "~@owner %half"),
                 ("mode", "owner!o@h", "#c", "+h-q", "owner", "owner")])
    assert snapshot(state)["#c"][2] == {"owner": "ho", "half": "h"}


def test_unless_asked_only_our_own_membership_is_kept() -> None:
    state = ConnectionState(NICK)
    feed(state, [*JOINED, ("join", "dave!d@h", "#chan"), ("mode", "Alice!a@h", "#chan", "+om", NICK, "Bob")])
    assert snapshot(state) == {"#chan": ("#Chan", {"bridge{m}": NICK}, {"bridge{m}": "o"}, {"m": ""})}
