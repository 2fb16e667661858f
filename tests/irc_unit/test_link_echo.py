"""IrcLink under IRCv3 echo-message: a line written is at risk until the server echoes it (or
refuses it); what a dropped connection may have lost is handed over in order, and echoes are no
news to the bridge. No server: the connection is a stand-in that records what is written, and the
server's answers are events. (The ledger's rules, one by one: test_outgoing.py.)"""

from __future__ import annotations

import irc.client

from bridges.irc.lines import notice, privmsg
from bridges.irc.link import IrcLink
from bridges.irc.outgoing import OutLine
from tests.irc_unit.stand_in import NICK, Recorder, server_says


def echoing_link() -> tuple[IrcLink, list[irc.client.Event]]:
    forwarded: list[irc.client.Event] = []
    made = IrcLink(host="irc.test", port=6667, tls=False, nick=NICK, ident="i", realname="r",
                   on_event=lambda _link, event: forwarded.append(event), lines_per_second=0, keepalive=0)
    wire = Recorder()
    made.attach(wire)
    server_says(made, "welcome", "server", NICK, ["Welcome"])
    server_says(made, "cap", "server", NICK, ["ACK", "server-time echo-message"])
    assert wire.lines == ["CAP REQ :echo-message"]  # asked for once registered
    return made, forwarded


def texts(lines: list[OutLine]) -> list[str]:
    return [line.text for line in lines]


async def test_only_lines_the_server_never_echoed_are_handed_over_in_order() -> None:
    link, forwarded = echoing_link()
    for line in [privmsg("#c", "one"), privmsg("#d", "two"), notice("#c", "three"), privmsg("#c", "four")]:
        link.send(line)
    # The server takes "one" (its echo spells our nick in another case) and refuses "two".
    server_says(link, "pubmsg", "bridge{m}!i@host", "#c", ["one"])
    server_says(link, "cannotsendtochan", "server", NICK, ["#d", "Cannot send to channel"])
    assert link.has_unsent
    assert texts(link.take_unsent()) == ["NOTICE #c :three", "PRIVMSG #c :four"]
    assert link.take_unsent() == []
    assert [event.type for event in forwarded] == ["welcome", "cap", "cannotsendtochan"]  # echoes are no news


async def test_an_action_echo_acknowledges_one_line() -> None:
    link, _forwarded = echoing_link()
    link.send(privmsg("#c", "waves", action=True))
    link.send(privmsg("#c", "after"))
    # One echoed line, two events: "ctcp" and "action".
    server_says(link, "ctcp", f"{NICK}!i@host", "#c", ["ACTION", "waves"])
    server_says(link, "action", f"{NICK}!i@host", "#c", ["waves"])
    assert texts(link.take_unsent()) == ["PRIVMSG #c :after"]


async def test_without_echo_message_nothing_is_tracked() -> None:
    link = IrcLink(host="irc.test", port=6667, tls=False, nick="n", ident="i", realname="r",
                   on_event=lambda _link, _event: None, lines_per_second=0, keepalive=0)
    link.attach(Recorder())
    server_says(link, "welcome", "server", "n", ["Welcome"])
    link.send(privmsg("#c", "fire and forget"))  # the server never said it echoes
    assert not link.has_unsent
