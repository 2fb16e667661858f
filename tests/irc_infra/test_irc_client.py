"""The test client's parsing and raw-line capture, without a server."""

from __future__ import annotations

from bridgekit.demo.irc_client import RawLineBuffer, parse_line


def test_parse_tags_source_params() -> None:
    raw = b"@time=2026-01-01T00:00:00.000Z;msgid=a\\sb\\:c;+draft/x :nick!user@host PRIVMSG #chan :hello  there\r\n"
    line = parse_line(raw)
    assert line.tags == {"time": "2026-01-01T00:00:00.000Z", "msgid": "a b;c", "+draft/x": ""}
    assert (line.source, line.user, line.host) == ("nick", "user", "host")
    assert line.command == "PRIVMSG"
    assert line.params == ("#chan", "hello  there")
    assert (line.target, line.text) == ("#chan", "hello  there")
    assert line.raw_bytes == raw
    assert line.untagged_bytes == b":nick!user@host PRIVMSG #chan :hello  there\r\n"


def test_parse_numeric_and_server_source() -> None:
    line = parse_line(b":irc.localhost 005 me NICKLEN=30 CHANTYPES=# :are supported\r\n")
    assert (line.command, line.source, line.user, line.host) == ("005", "irc.localhost", None, None)
    assert line.params == ("me", "NICKLEN=30", "CHANTYPES=#", "are supported")
    ping = parse_line(b"PING irc.localhost\n")
    assert (ping.source, ping.command, ping.params, ping.text) == (None, "PING", ("irc.localhost",), "irc.localhost")


def test_ctcp_action() -> None:
    line = parse_line(b":a!b@c PRIVMSG #x :\x01ACTION waves hello\x01\r\n")
    assert line.ctcp == ("ACTION", "waves hello")
    assert line.action == "waves hello"
    assert parse_line(b":a!b@c PRIVMSG #x :plain\r\n").action is None


def test_raw_line_buffer_keeps_exact_bytes_across_chunks() -> None:
    buf = RawLineBuffer()
    buf.feed(b":a PRIVMSG #x :caf\xc3")
    assert list(buf.raw_lines()) == []
    buf.feed(b"\xa9\r\n:a PRIVMSG #x :latin \xe9\nPING")
    lines = list(buf.raw_lines())
    assert lines == [
        (b":a PRIVMSG #x :caf\xc3\xa9\r\n", ":a PRIVMSG #x :café"),
        (b":a PRIVMSG #x :latin \xe9\n", ":a PRIVMSG #x :latin é"),  # not UTF-8: Latin-1, no error
    ]
    buf.feed(b" x\r\n")
    assert list(buf.raw_lines()) == [(b"PING x\r\n", "PING x")]
