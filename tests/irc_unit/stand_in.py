"""A stand-in for the server side of an IrcLink in unit tests: the connection records what is
written, and the server's answers are events handed to the link (as the reactor hands them)."""

from __future__ import annotations

from typing import Any

import irc.client

from bridgekit import KeyValue
from bridges.irc.http_routes import IrcRoutes
from bridges.irc.link import IrcLink
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords
from bridges.irc.session import SessionSetup
from bridges.irc.settings import IrcSettings
from tests.support.contexts import hand_built_context

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


class Values:
    """A connector's key-value store, in a dict (no TTLs: a test ends first)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        self.values[key] = value

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


def session_setup(kv: KeyValue | None = None, **settings: Any) -> SessionSetup:
    """What the sessions of a network named ``net`` share, with no connector: its state, its
    settings, its records in ``kv``, and no public URL (so no links)."""
    config = IrcSettings(server="irc.test", **settings)
    records = IrcRecords(kv, "net")
    network = IrcNetwork("net", ghost_for=lambda sender: f"@_net_{sender}:example.org", sender_of_ghost=lambda _: None)
    return SessionSetup(network, config, records, IrcRoutes(hand_built_context("net", config), records))
