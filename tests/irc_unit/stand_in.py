"""A stand-in for the server side of an IrcLink in unit tests: the connection records what is
written, and the server's answers are events handed to the link (as the reactor hands them)."""

from __future__ import annotations

import irc.client

from bridges.irc.link import IrcLink

NICK = "Bridge[m]"


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.up = True

    def is_connected(self) -> bool:
        return self.up

    def send_raw(self, string: str) -> None:
        self.lines.append(string)

    def disconnect(self, message: str = "") -> None:
        self.up = False


def connected(*, echo: bool, rate: float = 0, burst: int = 1) -> tuple[IrcLink, Recorder]:
    """A registered link; ``echo``: the server granted echo-message."""
    made = IrcLink(host="irc.test", port=6667, tls=False, nick=NICK, ident="i", realname="r",
                   on_event=lambda _link, _event: None, lines_per_second=rate, burst=burst, keepalive=0)
    wire = Recorder()
    made.attach(wire)
    server_says(made, "welcome", "server", NICK, [f"Welcome to the test network, {NICK}"])
    if echo:
        server_says(made, "cap", "server", NICK, ["ACK", "echo-message"])
    wire.lines.clear()  # the CAP REQ the welcome brought
    return made, wire


def server_says(link: IrcLink, kind: str, source: str, target: str, arguments: list[str]) -> None:
    link.hear(irc.client.Event(kind, irc.client.NickMask(source), target, arguments))


def echo(link: IrcLink, channel: str, text: str) -> None:
    """The server sends our own line back (echo-message)."""
    server_says(link, "pubmsg", f"{NICK}!i@host", channel, [text])
