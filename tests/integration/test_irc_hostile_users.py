"""The IRC bridge against people who try to misuse it: a Matrix moderator banning made-up ghosts,
anyone fetching media links they were not given, a leave reason that tries to add IRC commands.
A real Synapse, a real `bridgekit run`, a real InspIRCd, and plain IRC clients watching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from bridgekit.demo.irc_client import IrcTestClient, Line
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.naming import escape_localpart
from bridgekit.testing.matrix_steps import notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser
from tests.integration import test_irc_bridge as stories
from tests.irc_fixtures import MakeIrcClient

pytestmark = pytest.mark.integration

# The stories' fixtures, shared (assigned, not imported by name, so the linter sees no shadowing).
channel = stories.channel
start_irc = stories.start_irc
conversation = stories.conversation
Conversation = tuple[MatrixTestClient, str, IrcTestClient, str]
Relayed = Callable[..., Awaitable[tuple[MatrixTestClient, str, IrcTestClient]]]


@pytest.fixture
def relayed(
    start_irc: stories.StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, channel: str,
) -> Relayed:
    """``await relayed(**irc_settings)``: a relaying bridge; (alice in the portal, its room, bob in the channel)."""
    async def start(**settings: Any) -> tuple[MatrixTestClient, str, IrcTestClient]:
        await start_irc(virtual_users=False, **settings)
        alice = await make_matrix_user("alice")
        bob = await make_irc_client("bob")
        room_id = await stories.portal(alice, slot, channel)
        await bob.join(channel)
        return alice, room_id, bob

    return start


def ghost_for_nick(slot: AppserviceSlot, nick: str) -> str:
    """The ghost user ID the bridge's scheme gives ``nick`` (escaped: ``*`` is ``=2a``)."""
    return slot.ghost_user_id(f"{slot.connector}_{escape_localpart(nick.lower())}")


async def make_moderator(alice: MatrixTestClient, room_id: str, bob: IrcTestClient, channel: str, nick: str) -> None:
    """bob, the channel's operator, makes alice's connection one too: she moderates on Matrix."""
    await bob.mode(channel, f"+o {nick}")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and e["content"].get("users", {}).get(alice.user_id) == 50)


async def ban(alice: MatrixTestClient, room_id: str, user_id: str, reason: str) -> None:
    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/ban",
                        json_body={"user_id": user_id, "reason": reason})


def refusal_naming(slot: AppserviceSlot, name: str) -> Callable[[dict[str, Any]], bool]:
    said = notice(slot.bot_user_id, "Nothing was done")
    return lambda event: said(event) and name in event["content"]["body"]


async def send_file(
    alice: MatrixTestClient, room_id: str, bob: IrcTestClient, channel: str, name: str, data: bytes,
) -> tuple[str, str]:
    """alice sends a file into the portal; its mxc URI, and the link bob sees on IRC."""
    mxc = await alice.upload(data, "text/plain")
    await alice.send_event(room_id, "m.room.message", {"msgtype": "m.file", "body": name, "url": mxc})
    return mxc, (await bob.wait_for(stories.said_in(channel, name))).text.rsplit(" ", 1)[-1]


def bans_and_kicks(channel: str) -> Callable[[Line], bool]:
    return lambda line: line.target == channel and (
        line.command == "KICK" or (line.command == "MODE" and len(line.params) > 1 and "b" in line.params[1]))


async def test_banning_made_up_ghosts_bans_and_kicks_no_one_and_tells_the_moderator(
    conversation: Conversation, slot: AppserviceSlot, make_irc_client: MakeIrcClient, channel: str,
) -> None:
    """The ghost that unescapes to ``*`` once made the bridge send ``MODE #chan +b *!*@*``, and
    the one that unescapes to ``a,b,c`` kicked three people with one ban."""
    alice, room_id, bob, nick = conversation
    await make_moderator(alice, room_id, bob, channel, nick)
    people = [await make_irc_client(name) for name in ("ann", "ben", "cal")]
    for person in people:
        await person.join(channel)
        await alice.wait_for_membership(room_id, ghost_for_nick(slot, person.nick))
    watcher = await make_irc_client("watch")
    await watcher.join(channel)
    since = watcher.mark()

    await ban(alice, room_id, ghost_for_nick(slot, "*"), "everyone out")
    await ban(alice, room_id, ghost_for_nick(slot, ",".join(p.nick for p in people)), "three at once")
    await alice.send_text(room_id, "after the bans")
    await watcher.wait_for(stories.said_in(channel, "after the bans"), since=since)  # alice's line, after both

    assert watcher.lines(bans_and_kicks(channel), since=since) == []
    for person in people:
        assert not person.lines(lambda line: line.command in ("KICK", "474"))
    told = [await alice.wait_for_event(room_id, refusal_naming(slot, what))
            for what in ("'*'", repr(",".join(p.nick.lower() for p in people)))]
    assert all(alice.user_id in event["content"]["m.mentions"]["user_ids"] for event in told)
    assert "is not an IRC nick" in told[0]["content"]["body"]


async def test_banning_an_irc_user_bans_their_ident_and_host_only(
    conversation: Conversation, slot: AppserviceSlot, make_irc_client: MakeIrcClient, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    await make_moderator(alice, room_id, bob, channel, nick)
    spammer = await make_irc_client("spammer")
    joined = await spammer.join(channel)
    await alice.wait_for_membership(room_id, stories.ghost_of(slot, spammer.nick))
    since = bob.mark()

    await ban(alice, room_id, stories.ghost_of(slot, spammer.nick), "no spam here")
    mode = await bob.wait_for(lambda line: line.command == "MODE" and line.target == channel, since=since)
    assert mode.params[1:] == ("+b", f"*!{joined.user}@{joined.host}")  # never nick!*@* or *!*@bridgehost
    assert not joined.user.startswith("~")  # type: ignore[union-attr]
    kick = await bob.wait_for(lambda line: line.command == "KICK" and line.target == channel, since=since)
    assert kick.params[1] == spammer.nick
    assert kick.text == "no spam here"
    assert mode.is_from(nick)
    assert kick.is_from(nick)

    spammer.send_raw(f"JOIN {channel}")
    await spammer.wait_for(lambda line: line.command == "474")  # banned from the channel
    carol = await make_irc_client("carol")  # same host, other ident: not banned
    await carol.join(channel)
    await alice.send_text(room_id, "still here")
    await bob.wait_for(stories.said_in(channel, "still here"), since=since)  # alice's own connection is not banned
    assert len(bob.lines(lambda line: line.command == "KICK", since=since)) == 1


async def test_a_ban_that_would_hit_bridged_users_is_not_set_and_the_moderator_is_told(
    conversation: Conversation, slot: AppserviceSlot, make_irc_client: MakeIrcClient, channel: str,
) -> None:
    """mallory gives the bridge bot's ident, from the bridge's host: ``*!bridge@host`` would ban
    the bot, and ``*!*@host`` every bridged Matrix user. She is kicked, and nothing is banned."""
    alice, room_id, bob, nick = conversation
    await make_moderator(alice, room_id, bob, channel, nick)
    mallory = await make_irc_client("mallory", username="bridge")
    joined = await mallory.join(channel)
    assert joined.user == "bridge"
    await alice.wait_for_membership(room_id, stories.ghost_of(slot, mallory.nick))
    since = bob.mark()

    await ban(alice, room_id, stories.ghost_of(slot, mallory.nick), "troll")
    kick = await bob.wait_for(lambda line: line.command == "KICK" and line.target == channel, since=since)
    assert kick.params[1] == mallory.nick
    told = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "no IRC ban was set"))
    assert "bridge" in told["content"]["body"]
    await alice.send_text(room_id, "after the kick")
    await bob.wait_for(stories.said_in(channel, "after the kick"), since=since)
    assert bob.lines(lambda line: line.command == "MODE" and line.target == channel, since=since) == []


async def test_a_media_link_is_signed_and_only_for_files_sent_into_a_portal(
    conversation: Conversation, slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    data = b"the minutes of the meeting\n"
    mxc, url = await send_file(alice, room_id, bob, channel, "minutes.txt", data)
    server, never_sent = (await alice.upload(b"a private file\n", "text/plain")).removeprefix("mxc://").split("/")
    base = url[: url.index("/media/") + len("/media")]

    async with httpx.AsyncClient() as http:
        guessed = await http.get(f"{base}/{server}/{never_sent}/notes.txt")  # how links used to look
        assert guessed.status_code == 404
        assert b"private file" not in guessed.content
        media_id, token, name = url.removeprefix(f"{base}/{server}/").split("/")
        assert f"mxc://{server}/{media_id}" == mxc
        expiry, tag = token.split(".")
        other_tag = ("A" if tag[0] != "A" else "B") + tag[1:]
        served = await http.get(url)
        assert served.status_code == 200
        assert served.content == data
        assert served.headers["content-disposition"] == 'attachment; filename="minutes.txt"'
        for forged in (
            f"{base}/{server}/{media_id}/{name}",  # unsigned, as links used to be
            f"{base}/{server}/{media_id}/{expiry}.{other_tag}/{name}",  # tampered signature
            f"{base}/{server}/{media_id}/{expiry}z.{tag}/{name}",  # a later expiry
            f"{base}/{server}/{never_sent}/{token}/{name}",  # a file nobody sent into a portal
            f"{base}/{server}/{never_sent}/{name}",
        ):
            answer = await http.get(forged)
            assert answer.status_code == 404, forged
            assert b"private file" not in answer.content


async def test_a_media_link_expires(relayed: Relayed, channel: str) -> None:
    alice, room_id, bob = await relayed(media_link_days=4 / 86_400)  # 4 s
    _mxc, url = await send_file(alice, room_id, bob, channel, "brief.txt", b"short-lived\n")
    expires_at = int(url.rsplit("/", 2)[1].split(".")[0], 36)

    assert expires_at - time.time() < 10
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        # What must happen is the clock passing the expiry the link carries (a few seconds away).
        await asyncio.sleep(max(0.0, expires_at + 1 - time.time()))
        assert (await http.get(url)).status_code == 404


async def test_a_media_link_serves_no_more_than_the_cap(relayed: Relayed, channel: str) -> None:
    alice, room_id, bob = await relayed(media_max_mib=1 / 1024)  # 1 KiB
    _mxc, small = await send_file(alice, room_id, bob, channel, "small.txt", b"s" * 1024)
    _mxc, large = await send_file(alice, room_id, bob, channel, "large.txt", b"l" * 1025)
    async with httpx.AsyncClient() as http:
        assert (await http.get(small)).content == b"s" * 1024
        refused = await http.get(large)
    assert refused.status_code == 502
    assert b"larger than this bridge serves" in refused.content


async def test_a_leave_reason_with_line_breaks_parts_on_one_line(
    conversation: Conversation, channel: str,
) -> None:
    """Before, the reason's line break made the PART unsendable: alice stayed in the channel."""
    alice, room_id, bob, nick = conversation
    since = bob.mark()
    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/leave",
                        json_body={"reason": "bye\r\nQUIT :pwned\nJOIN #evil\r\n"})
    part = await bob.wait_for(lambda line: line.command == "PART" and line.is_from(nick), since=since)
    assert part.target == channel
    assert part.text == "bye QUIT :pwned JOIN #evil"
    bob.send_raw(f"NAMES {channel}")
    names = await bob.wait_for(lambda line: line.command == "353", since=since)
    assert nick not in names.text.replace("@", " ").split()
    assert not bob.lines(lambda line: line.is_from(nick) and line.command in ("QUIT", "JOIN"), since=since)


async def test_a_direct_chat_with_a_made_up_ghost_is_refused(
    conversation: Conversation, slot: AppserviceSlot, channel: str,
) -> None:
    """The ghost whose "nick" is the channel's name: a private chat with it would have been said
    in the channel by alice's connection, where nobody in the portal sees it."""
    alice, room_id, bob, _nick = conversation
    since = bob.mark()
    made_up = ghost_for_nick(slot, channel)
    dm = await alice.create_room(invite=[made_up], is_direct=True, preset="trusted_private_chat")
    told_room = await alice.join(await alice.wait_for_any_invite())
    told = await alice.wait_for_event(told_room, notice(slot.bot_user_id, "is no one on"))
    assert made_up in told["content"]["body"]
    await alice.send_text(dm, "is this private?")
    await alice.send_text(room_id, "in the portal")
    await bob.wait_for(stories.said_in(channel, "in the portal"), since=since)
    assert not bob.lines(stories.said_in(channel, "is this private?"), since=since)
