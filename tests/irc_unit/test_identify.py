"""A puppeted connection identifying: ConnectionState with an Identification, fed the events a
server sends (as the ``irc`` package hands them over), and the lines written in answer. SASL PLAIN
when offered, NickServ IDENTIFY after the welcome when not, and every refusal ends the connection
with the server's reason (no retry, no unidentified fallback). No socket."""

from __future__ import annotations

import base64

import irc.client
import pytest

from bridges.irc.account_login import AccountLogin, LoginMethod
from bridges.irc.connection_state import ConnectionState
from bridges.irc.identify import Identification, NickServ, plain_chunks

SERVER = "irc.test"
NICK = "alice"


def event(kind: str, source: str, target: str | None, *arguments: str) -> irc.client.Event:
    return irc.client.Event(kind, irc.client.NickMask(source), target, list(arguments))


PASSWORD = "hunter2"


def state_for(method: LoginMethod = "auto", **nickserv: str) -> ConnectionState:
    login = AccountLogin("alice", PASSWORD, method)
    return ConnectionState(NICK, caps=("echo-message",), identification=Identification(login, NickServ(**nickserv)))


def hear(state: ConnectionState, *events: tuple[str, ...]) -> tuple[list[str], bool]:
    """The lines written in answer to ``events``, and whether the last one hung up."""
    sent: list[str] = []
    hang_up = False
    for kind, source, target, *arguments in events:
        reaction = state.hear(event(kind, source, target or None, *arguments))
        sent += [line.text for line in reaction.send]
        hang_up = reaction.hang_up
    return sent, hang_up


def ready(state: ConnectionState) -> bool:
    return state.ready


WELCOME = ("welcome", SERVER, NICK, "Welcome")
PLAIN_PAYLOAD = base64.b64encode(b"alice\0alice\0hunter2").decode()


def test_cap_ls_goes_out_before_registration() -> None:
    state = state_for()
    assert [line.text for line in state.opening()] == ["CAP LS 302"]
    assert ConnectionState(NICK).opening() == ()  # connections without an account: as before


def test_sasl_plain_when_offered_then_cap_end_and_todays_caps_after_the_welcome() -> None:
    state = state_for()
    state.opening()
    sent, _ = hear(state, ("cap", SERVER, "*", "LS", "*", "echo-message account-tag"),
                   ("cap", SERVER, "*", "LS", "sasl=PLAIN,EXTERNAL server-time"))
    assert sent == ["CAP REQ :sasl"]
    sent, _ = hear(state, ("cap", SERVER, "*", "ACK", "sasl"))
    assert sent == ["AUTHENTICATE PLAIN"]
    sent, _ = hear(state, ("authenticate", "", "+"))
    assert sent == [f"AUTHENTICATE {PLAIN_PAYLOAD}"]
    sent, _ = hear(state, ("loggedin", SERVER, NICK, "alice!a@h", "alice", "You are now logged in as alice"),
                   ("saslsuccess", SERVER, NICK, "SASL authentication successful"))
    assert sent == ["CAP END"]
    assert not ready(state)  # identified, but not registered yet
    sent, _ = hear(state, WELCOME)
    assert sent == ["CAP REQ :echo-message"]  # no IDENTIFY: SASL did it
    assert ready(state)
    assert state.identification is not None
    assert state.identification.account == "alice"


def test_sasl_without_a_mechanism_list_is_tried() -> None:
    state = state_for()
    state.opening()
    sent, _ = hear(state, ("cap", SERVER, "*", "LS", "sasl echo-message"))
    assert sent == ["CAP REQ :sasl"]


@pytest.mark.parametrize(("kind", "reason"), [
    ("saslfail", "SASL authentication failed"),
    ("sasltoolong", "SASL message too long"),
    ("saslaborted", "SASL authentication aborted"),
    ("nicklocked", "You must use a nick assigned to you"),
])
def test_a_sasl_failure_hangs_up_with_the_servers_reason(kind: str, reason: str) -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "sasl=PLAIN"), ("cap", SERVER, "*", "ACK", "sasl"),
         ("authenticate", "", "+"))
    sent, hang_up = hear(state, (kind, SERVER, NICK, reason))
    assert hang_up
    assert sent == []  # no CAP END: the connection is not registered unidentified
    assert state.failure == f"SASL: {reason}"
    assert not ready(state)


def test_without_sasl_nickserv_identify_follows_the_welcome() -> None:
    state = state_for(nick="NickServ", identify="IDENTIFY {account} {password}")
    state.opening()
    sent, _ = hear(state, ("cap", SERVER, "*", "LS", "echo-message account-tag"))
    assert sent == ["CAP END"]
    sent, _ = hear(state, WELCOME)
    assert sent == ["CAP REQ :echo-message", "PRIVMSG NickServ :IDENTIFY alice hunter2"]
    assert not ready(state)  # waiting for NickServ's answer
    reaction = state.hear(event("privnotice", "NickServ!NickServ@services", NICK,
                                "\x02alice\x02 is registered. Identify with /msg NickServ IDENTIFY"))
    assert not reaction.forward
    assert not ready(state)  # not the answer yet
    state.hear(event("privnotice", "NickServ!NickServ@services", NICK, "You are now identified for \x02alice\x02."))
    assert ready(state)


def test_the_nickserv_template_and_nick_are_the_networks() -> None:
    state = state_for(nick="AuthServ", identify="AUTH {account} {password}")
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "echo-message"))
    sent, _ = hear(state, WELCOME)
    assert sent[-1] == "PRIVMSG AuthServ :AUTH alice hunter2"


@pytest.mark.parametrize("said", [
    "Invalid password for \x02alice\x02.",
    "\x02alice\x02 is not a registered nickname.",
    "Password incorrect.",
])
def test_nickservs_refusal_hangs_up_with_its_words(said: str) -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "echo-message"), WELCOME)
    _, hang_up = hear(state, ("privnotice", "NickServ!NickServ@services", NICK, said))
    assert hang_up
    assert state.failure == "NickServ: " + said.replace("\x02", "")


def test_a_notice_from_someone_else_is_not_nickservs_answer() -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "echo-message"), WELCOME)
    _, hang_up = hear(state, ("privnotice", "mallory!m@h", NICK, "Invalid password for alice"))
    assert not hang_up
    assert state.failure is None


def test_the_900_numeric_also_settles_nickserv() -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "echo-message"), WELCOME,
         ("loggedin", SERVER, NICK, "alice!a@h", "alice", "You are now logged in as alice"))
    assert ready(state)


def test_sasl_required_but_not_offered_is_a_refusal() -> None:
    state = state_for(method="sasl")
    state.opening()
    _, hang_up = hear(state, ("cap", SERVER, "*", "LS", "echo-message"))
    assert hang_up
    assert state.failure == "the server does not offer SASL PLAIN"


def test_nickserv_chosen_even_where_sasl_is_offered() -> None:
    state = state_for(method="nickserv")
    state.opening()
    sent, _ = hear(state, ("cap", SERVER, "*", "LS", "sasl=PLAIN"))
    assert sent == ["CAP END"]


def test_a_refused_sasl_cap_falls_back_to_nickserv() -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "sasl=PLAIN"))
    sent, _ = hear(state, ("cap", SERVER, "*", "NAK", "sasl"))
    assert sent == ["CAP END"]


def test_a_long_payload_is_split_at_400_bytes_and_ends_with_plus_when_exact() -> None:
    chunks = plain_chunks("a", "p" * 600)
    assert [len(chunk) for chunk in chunks[:-1]] == [400, 400]
    assert base64.b64decode("".join(chunks)) == b"a\0a\0" + b"p" * 600
    exact = plain_chunks("ab", "x" * 294)  # 300 bytes -> exactly 400 base64 characters
    assert [len(chunk) for chunk in exact] == [400, 1]
    assert exact[-1] == "+"


def test_a_password_never_shows_in_a_repr() -> None:
    assert "hunter2" not in repr(AccountLogin("alice", "hunter2"))


def test_a_reconnect_starts_the_identification_again() -> None:
    state = state_for()
    state.opening()
    hear(state, ("cap", SERVER, "*", "LS", "echo-message"), WELCOME,
         ("privnotice", "NickServ!n@s", NICK, "You are now identified for alice."))
    assert ready(state)
    state.connecting()
    assert [line.text for line in state.opening()] == ["CAP LS 302"]
    assert not ready(state)


def test_a_server_that_never_answers_cap_ls_gets_nickserv_after_its_welcome() -> None:
    state = state_for()
    state.opening()
    sent, hang_up = hear(state, ("unknowncommand", SERVER, NICK, "CAP", "Unknown command"), WELCOME)
    assert sent == ["CAP REQ :echo-message", "PRIVMSG NickServ :IDENTIFY alice hunter2"]
    assert not hang_up


def test_sasl_required_and_a_server_without_cap_is_a_refusal_at_the_welcome() -> None:
    state = state_for(method="sasl")
    state.opening()
    _, hang_up = hear(state, WELCOME)
    assert hang_up
    assert state.failure == "the server does not offer SASL PLAIN"
