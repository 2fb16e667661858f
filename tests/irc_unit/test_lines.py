"""Every line the bridge writes is built by ``lines.py``: each builder's line as written, and the
values no builder lets through (CR, LF or NUL anywhere; an empty parameter, a space or a leading
':' in any parameter but the trailing one)."""

from __future__ import annotations

import pytest

from bridges.irc import lines
from bridges.irc.lines import Line

BUILT = [
    (lines.privmsg("#c", "hello there"), "PRIVMSG #c :hello there"),
    (lines.privmsg("alice", ":starts with a colon"), "PRIVMSG alice ::starts with a colon"),
    (lines.privmsg("#c", "waves", action=True), "PRIVMSG #c :\x01ACTION waves\x01"),
    (lines.notice("#c", "hi"), "NOTICE #c :hi"),
    (lines.message("NOTICE", "#c", "waves", action=True), "NOTICE #c :\x01ACTION waves\x01"),
    (lines.join("#c"), "JOIN #c"),
    (lines.part("#c"), "PART #c"),
    (lines.part("#c", ""), "PART #c"),
    (lines.part("#c", "unlinked from Matrix"), "PART #c :unlinked from Matrix"),
    (lines.topic("#c", "a new topic"), "TOPIC #c :a new topic"),
    (lines.topic("#c", ""), "TOPIC #c :"),  # clears the topic: the ':' stays
    (lines.mode("#c", "+b", "*!*@host"), "MODE #c +b *!*@host"),
    (lines.kick("#c", "Spammer", "no spam"), "KICK #c Spammer :no spam"),
    (lines.who("#c"), "WHO #c"),
    (lines.join("#c", "s3cret"), "JOIN #c s3cret"),
    (lines.names("#c"), "NAMES #c"),
    (lines.topic_query("#c"), "TOPIC #c"),
    (lines.whois("bob"), "WHOIS bob"),
    (lines.raw("privmsg NickServ :info bob"), "PRIVMSG NickServ :info bob"),
    (lines.raw("MODE #c +l 10"), "MODE #c +l 10"),
    (lines.nick("alice[m]"), "NICK alice[m]"),
    (lines.cap_request(["server-time", "echo-message"]), "CAP REQ :server-time echo-message"),
    (lines.ping("bk-echo-7"), "PING :bk-echo-7"),
]


@pytest.mark.parametrize(("line", "written"), BUILT, ids=[written for _line, written in BUILT])
def test_each_builder_writes_its_command(line: Line, written: str) -> None:
    assert line.text == written
    assert str(line) == written


def test_a_line_knows_its_command_and_target_without_parsing_text() -> None:
    line = lines.privmsg("#c", "a b c")
    assert (line.command, line.target, line.trailing) == ("PRIVMSG", "#c", "a b c")
    assert lines.ping("x").target is None


REFUSED = [
    # CR, LF, NUL anywhere: what follows would be a command of its own
    (lambda: lines.privmsg("#c", "hi\r\nQUIT :bye"), "CR, LF or NUL"),
    (lambda: lines.privmsg("#c", "hi\nQUIT"), "CR, LF or NUL"),
    (lambda: lines.privmsg("#c", "hi\rQUIT"), "CR, LF or NUL"),
    (lambda: lines.notice("#c", "nul\0"), "CR, LF or NUL"),
    (lambda: lines.topic("#c", "line\nbreak"), "CR, LF or NUL"),
    (lambda: lines.kick("#c", "bob", "why\r"), "CR, LF or NUL"),
    (lambda: lines.join("#c\r\nQUIT"), "CR, LF or NUL"),
    (lambda: lines.nick("bob\0"), "CR, LF or NUL"),
    # a space would shift the parameters, a leading ':' would start the trailing one
    (lambda: lines.privmsg("#a #b", "hi"), "only the last"),
    (lambda: lines.privmsg(":#c", "hi"), "only the last"),
    (lambda: lines.join("#c 0"), "only the last"),
    (lambda: lines.kick("#c", "bob :reason", "x"), "only the last"),
    (lambda: lines.mode("#c", "+b", "a b"), "only the last"),
    (lambda: lines.nick(":bob"), "only the last"),
    (lambda: lines.part("#c x", "bye"), "only the last"),
    # an empty middle parameter would leave the next one in its place
    (lambda: lines.kick("#c", "", "x"), "only the last"),
    (lambda: lines.privmsg("", "hi"), "only the last"),
    # not a command at all
    (lambda: Line("PRIV MSG", ("#c",), "x"), "not an IRC command"),
    (lambda: Line("", ("#c",)), "not an IRC command"),
]


@pytest.mark.parametrize(("build", "why"), REFUSED)
def test_unsafe_values_are_refused(build: object, why: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=why):
        build()


def test_a_line_as_other_clients_receive_it_has_the_senders_prefix() -> None:
    assert lines.as_received(lines.privmsg("#c", "hi"), source="alice!a@host") == ":alice!a@host PRIVMSG #c :hi"


def test_the_trailing_parameter_may_hold_spaces_colons_and_nothing() -> None:
    assert lines.privmsg("#c", " : ").text == "PRIVMSG #c : : "
    assert lines.privmsg("#c", "").text == "PRIVMSG #c :"
