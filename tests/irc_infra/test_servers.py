"""The IRC test servers and the test client: what the IRC bridge tests build on."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from bridgekit.demo.irc_client import IrcCommandError, IrcTestClient, IrcWaitTimeout
from tests.irc_fixtures import MakeIrcClient, unique_nick
from tests.servers.ircd import InspIRCd, NgIRCd

pytestmark = pytest.mark.integration

IRCV3_CAPS = ("message-tags", "server-time", "echo-message")


def new_channel() -> str:
    return f"#t{secrets.token_hex(4)}"


async def test_two_clients_see_each_others_privmsg(make_irc_client: MakeIrcClient, inspircd: InspIRCd) -> None:
    alice, bob = await asyncio.gather(make_irc_client("alice", caps=IRCV3_CAPS), make_irc_client("bob"))
    assert alice.caps_enabled >= set(IRCV3_CAPS)
    assert alice.isupport["NICKLEN"] == "30"
    channel = new_channel()
    await alice.join(channel)
    joined = await bob.join(channel)
    assert joined.is_from(bob.nick)
    await alice.wait_for(lambda ln: ln.command == "JOIN" and ln.is_from(bob.nick))

    since = bob.mark()
    await alice.privmsg(channel, "hello from alice")
    got = await bob.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.is_from(alice.nick), since=since)
    assert (got.target, got.text) == (channel, "hello from alice")
    # bob asked for no caps: no tags, and the exact wire bytes are known.
    expected = f":{alice.nick}!{got.user}@{got.host} PRIVMSG {channel} :hello from alice\r\n".encode()
    assert got.raw_bytes == expected
    assert len(got.raw_bytes) <= 512
    assert got.host == "127.0.0.1"

    # echo-message: alice sees her own line, tagged with server-time and a msgid.
    echo = await alice.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.is_from(alice.nick))
    assert echo.text == "hello from alice"
    assert "time" in echo.tags
    assert "msgid" in echo.tags
    assert echo.raw_bytes.startswith(b"@")
    assert echo.raw_bytes.endswith(b"\r\n")
    assert len(echo.untagged_bytes) == len(expected)

    await bob.privmsg(channel, "hi alice")
    reply = await alice.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.is_from(bob.nick))
    assert reply.text == "hi alice"
    assert "time" in reply.tags


async def test_test_server_accepts_lines_longer_than_512(make_irc_client: MakeIrcClient) -> None:
    """The bridge tests must see an over-long line the bridge sends, not have the server cut it."""
    alice, bob = await asyncio.gather(make_irc_client("alice"), make_irc_client("bob"))
    channel = new_channel()
    await alice.join(channel)
    await bob.join(channel)
    text = "".join(secrets.choice("abcdefghij") for _ in range(1000))
    await alice.privmsg(channel, text)
    got = await bob.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.is_from(alice.nick))
    assert got.text == text
    assert len(got.raw_bytes) > 1000
    assert alice.closed is False


async def test_client_commands(make_irc_client: MakeIrcClient) -> None:
    op, other = await asyncio.gather(make_irc_client("op"), make_irc_client("other"))
    channel = new_channel()
    await op.join(channel)  # first in: channel operator
    await other.join(channel)

    await op.topic(channel, "a topic")
    topic = await other.wait_for(lambda ln: ln.command == "TOPIC")
    assert (topic.source, topic.target, topic.text) == (op.nick, channel, "a topic")

    await op.notice(channel, "a notice")
    assert (await other.wait_for(lambda ln: ln.command == "NOTICE" and ln.is_from(op.nick))).text == "a notice"
    await op.action(channel, "waves")
    assert (await other.wait_for(lambda ln: ln.action is not None)).action == "waves"

    await op.mode(channel, f"+v {other.nick}")
    mode = await other.wait_for(lambda ln: ln.command == "MODE" and ln.target == channel)
    assert mode.params[1:] == ("+v", other.nick)

    old = other.nick
    new = unique_nick("renamed")
    await other.change_nick(new)
    assert other.nick == new
    assert (await op.wait_for(lambda ln: ln.command == "NICK" and ln.is_from(old))).text == new
    with pytest.raises(IrcCommandError, match="433"):
        await other.change_nick(op.nick)

    await op.kick(channel, other.nick, "bye now")
    kick = await other.wait_for(lambda ln: ln.command == "KICK")
    assert kick.params == (channel, other.nick, "bye now")

    await other.join(channel)
    parted = await other.part(channel, "two words")
    assert parted.text == "two words"
    assert (await op.wait_for(lambda ln: ln.command == "PART" and ln.is_from(other.nick))).text == "two words"

    with pytest.raises(ValueError, match="CR, LF and NUL"):
        other.send_raw("PRIVMSG #x :a\rb")
    await other.quit("done here")
    assert other.closed
    with pytest.raises(IrcWaitTimeout, match="closed"):
        await other.wait_for(lambda ln: False, 5)


async def test_ngircd_accepts_many_connections_quickly(ngircd: NgIRCd) -> None:
    began = time.monotonic()
    results: list[IrcTestClient | BaseException] = []
    # Eight at a time: ngIRCd listens with a backlog of 10, and a burst past it is answered
    # with resets (32 of 50 once, on a fresh machine), as a real network's throttle would.
    for wave in range(0, 50, 8):
        results += await asyncio.gather(
            *(IrcTestClient.connect(ngircd.host, ngircd.port, unique_nick(f"m{i}"), timeout=20)
              for i in range(wave, min(wave + 8, 50))),
            return_exceptions=True,
        )
    elapsed = time.monotonic() - began
    clients = [c for c in results if isinstance(c, IrcTestClient)]
    try:
        assert len(clients) == 50, [r for r in results if not isinstance(r, IrcTestClient)][:3]
        assert elapsed < 10, f"50 registrations took {elapsed:.1f} s"
        channel = new_channel()
        await asyncio.gather(*(c.join(channel) for c in clients))
        await clients[0].privmsg(channel, "to everyone")
        for c in clients[1:]:
            await c.wait_for(lambda ln: ln.command == "PRIVMSG" and ln.text == "to everyone", 10)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    assert all(c.closed for c in clients)


async def test_flood_protection_is_off_by_default_and_on_when_asked(
    make_irc_client: MakeIrcClient, inspircd_flood: InspIRCd
) -> None:
    count = 25

    async def burst(sender: IrcTestClient, receiver: IrcTestClient) -> None:
        channel = new_channel()
        await sender.join(channel)
        await receiver.join(channel)
        for i in range(count):
            await sender.privmsg(channel, f"burst line {i}")

    alice, bob = await asyncio.gather(make_irc_client("alice"), make_irc_client("bob"))
    await burst(alice, bob)
    await bob.wait_for_count(lambda ln: ln.command == "PRIVMSG", count, 10)

    carol, dave = await asyncio.gather(
        make_irc_client("carol", server=inspircd_flood), make_irc_client("dave", server=inspircd_flood)
    )
    await burst(carol, dave)
    # Throttled (fake lag) or disconnected: the burst does not arrive at once.
    with pytest.raises(IrcWaitTimeout):
        await dave.wait_for_count(lambda ln: ln.command == "PRIVMSG", count, 2)
