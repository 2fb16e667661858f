"""The IRC bridge end to end: a real Synapse, a real `bridgekit run` with the IRC connector, a real
InspIRCd, and people on IRC using a plain IRC client. One story per test."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient, Line
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.matrix_steps import from_sender, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd
from tests.servers.tcp_cutter import TcpCutter

pytestmark = pytest.mark.integration

Event = dict[str, Any]
StartIrc = Callable[..., Awaitable[BridgeProcess]]


@pytest.fixture
def channel() -> str:
    return f"#room{secrets.token_hex(3)}"


@pytest.fixture
def start_irc(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness
) -> StartIrc:
    async def start(**settings: Any) -> BridgeProcess:
        public = f"http://127.0.0.1:{slot.bridge_port}"
        return await run_bridge(
            slot, "irc",
            connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0,
                       "bot_nick": f"bridge{secrets.token_hex(2)}", **settings},
            permissions={synapse.server_name: "admin"},
            appservice={"public_url": public},
        )

    return start


async def portal(alice: MatrixTestClient, slot: AppserviceSlot, channel: str) -> str:
    """Alice joins the channel's alias: the bridge makes the portal and its bot joins the channel."""
    room_id = await alice.join(slot.alias(channel))
    await alice.wait_for_membership(room_id, alice.user_id)
    return room_id


def privmsg_from(nick: str, channel: str) -> Callable[[Line], bool]:
    return lambda line: line.command == "PRIVMSG" and line.target == channel and line.is_from(nick)


def said_in(channel: str, containing: str) -> Callable[[Line], bool]:
    return lambda line: line.command in ("PRIVMSG", "NOTICE") and line.target == channel and containing in line.text


def ghost_of(slot: AppserviceSlot, nick: str) -> str:
    return slot.ghost_user_id(f"{slot.connector}_{nick.lower()}")


def body_is(sender: str, body: str) -> Callable[[Event], bool]:
    return lambda e: from_sender(sender)(e) and e["content"].get("body") == body


async def test_relay_mode_carries_a_conversation_both_ways(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=False)
    alice = await make_matrix_user("alice")
    bob: IrcTestClient = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)

    await alice.send_text(room_id, "hello from matrix")
    line = await bob.wait_for(said_in(channel, "hello from matrix"))
    name = alice.user_id.split(":")[0].lstrip("@")
    assert line.text == f"<{name}> hello from matrix"

    await bob.privmsg(channel, "hello from irc")
    event = await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "hello from irc"))
    assert event["content"]["msgtype"] == "m.text"


@pytest.fixture
async def conversation(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> tuple[MatrixTestClient, str, IrcTestClient, str]:
    """Virtual-user mode: alice on Matrix (her own IRC connection once she speaks), bob on IRC,
    both in the channel's portal; returns (alice, room, bob, alice's nick)."""
    await start_irc(virtual_users=True)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)  # first in: bob is the channel's operator
    room_id = await portal(alice, slot, channel)
    await alice.send_text(room_id, "hi all")
    first = await bob.wait_for(said_in(channel, "hi all"))
    assert first.source is not None
    return alice, room_id, bob, first.source


async def test_virtual_user_mode_gives_alice_her_own_nick_ident_and_realname(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], channel: str,
) -> None:
    alice, _room_id, bob, nick = conversation
    localpart = alice.user_id.split(":")[0].lstrip("@")
    assert nick.endswith("[m]")
    assert nick.startswith(localpart[:5])
    assert len(nick) <= 30
    join = next(line for line in bob.received if line.command == "JOIN" and line.is_from(nick))
    assert join.user is not None
    assert len(join.user.lstrip("~")) <= 10
    bob.send_raw(f"WHOIS {nick}")
    whois = await bob.wait_for(lambda line: line.command == "311" and len(line.params) > 1 and line.params[1] == nick)
    assert whois.text == alice.user_id  # the Matrix ID in the realname


async def test_emote_and_notice_both_ways(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    await alice.send_event(room_id, "m.room.message", {"msgtype": "m.emote", "body": "waves"})
    emote = await bob.wait_for(lambda line: line.action == "waves")
    assert emote.is_from(nick)
    assert emote.target == channel
    await alice.send_event(room_id, "m.room.message", {"msgtype": "m.notice", "body": "build passed"})
    note = await bob.wait_for(lambda line: line.command == "NOTICE" and line.text == "build passed")
    assert note.is_from(nick)

    ghost = ghost_of(slot, bob.nick)
    await bob.action(channel, "nods")
    event = await alice.wait_for_event(room_id, body_is(ghost, "nods"))
    assert event["content"]["msgtype"] == "m.emote"
    await bob.notice(channel, "automated notice")
    event = await alice.wait_for_event(room_id, body_is(ghost, "automated notice"))
    assert event["content"]["msgtype"] == "m.notice"


async def test_formatting_both_ways(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": "bold italic code", "format": "org.matrix.custom.html",
        "formatted_body": "<b>bold</b> <i>italic</i> <code>code</code> <font data-mx-color=\"#ff0000\">red</font>",
    })
    line = await bob.wait_for(said_in(channel, "bold"))
    assert "\x02bold\x02" in line.text
    assert "\x1ditalic\x1d" in line.text
    assert "\x11code\x11" in line.text
    assert "\x0304red" in line.text or "\x034red" in line.text

    await bob.privmsg(channel, "\x02strong\x02 and \x0303green\x03 <script>")
    event = await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "strong and green <script>"))
    html = event["content"]["formatted_body"]
    assert "<b>strong</b>" in html
    assert "data-mx-color" in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html


async def test_mentions_both_ways(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    await bob.privmsg(channel, f"{nick}: are you there?")
    event = await alice.wait_for_event(room_id, lambda e: from_sender(ghost_of(slot, bob.nick))(e)
                                       and "are you there" in e["content"]["body"])
    assert event["content"]["m.mentions"]["user_ids"] == [alice.user_id]  # notifies her
    assert alice.user_id in event["content"]["formatted_body"]  # a pill

    ghost = ghost_of(slot, bob.nick)
    await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": f"{bob.nick}: yes", "format": "org.matrix.custom.html",
        "formatted_body": f'<a href="https://matrix.to/#/{ghost}">{bob.nick} (IRC)</a>: yes',
        "m.mentions": {"user_ids": [ghost]},
    })
    line = await bob.wait_for(said_in(channel, "yes"))
    assert line.text == f"{bob.nick}: yes"  # the pill became his nick


async def test_a_matrix_reply_names_the_irc_user(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    await bob.privmsg(channel, "what time is it?")
    question = await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "what time is it?"))
    await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": "> <bob> what time is it?\n\nnoon",
        "m.relates_to": {"m.in_reply_to": {"event_id": question["event_id"]}},
    })
    line = await bob.wait_for(said_in(channel, "noon"))
    assert line.text == f"{bob.nick}: noon"  # short template, the old fallback quote stripped


async def test_an_edit_sends_the_changed_words(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    event_id = await alice.send_text(room_id, "the meeting is at noon")
    await bob.wait_for(said_in(channel, "the meeting is at noon"))
    await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": "* the meeting is at three",
        "m.new_content": {"msgtype": "m.text", "body": "the meeting is at three"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    })
    line = await bob.wait_for(said_in(channel, "* "))
    assert line.is_from(nick)
    assert line.text == "* three"


async def test_media_arrives_as_a_link_the_bridge_serves(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], channel: str,
) -> None:
    import httpx

    alice, room_id, bob, _nick = conversation
    data = b"hello, this is a text file\n"
    mxc = await alice.upload(data, "text/plain")
    await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.file", "body": "notes.txt", "url": mxc, "info": {"size": len(data), "mimetype": "text/plain"},
    })
    line = await bob.wait_for(said_in(channel, "notes.txt"))
    url = line.text.rsplit(" ", 1)[-1]
    assert url.startswith("http://127.0.0.1:")
    assert "notes.txt (file, 27 B)" in line.text
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == data


async def test_topic_both_ways(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    # bob, the channel operator, shows on Matrix with a moderator's power level.
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and e["content"].get("users", {}).get(ghost_of(slot, bob.nick)) == 50)
    await bob.topic(channel, "topic from irc")
    event = await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.topic"
                                       and e["content"].get("topic") == "topic from irc")
    assert event["sender"] in (ghost_of(slot, bob.nick), slot.bot_user_id)
    await bob.mode(channel, f"+o {nick}")  # her IRC connection made operator: she moderates on Matrix too
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and e["content"].get("users", {}).get(alice.user_id) == 50)
    await alice.send_state(room_id, "m.room.topic", {"topic": "topic from matrix"})
    await bob.wait_for(lambda line: line.command == "TOPIC" and line.text == "topic from matrix")


async def test_join_part_quit_and_kick_follow_on_matrix(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
    make_irc_client: MakeIrcClient, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    carol = await make_irc_client("carol")
    await carol.join(channel)
    carol_ghost = ghost_of(slot, carol.nick)
    await alice.wait_for_membership(room_id, carol_ghost)
    await carol.part(channel, "bye")
    await alice.wait_for_membership(room_id, carol_ghost, "leave")
    await carol.join(channel)
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.member" and e.get("state_key") == carol_ghost
                               and e["content"].get("membership") == "join"
                               and sum(1 for x in alice.events(room_id) if x.get("state_key") == carol_ghost) >= 3)
    await bob.kick(channel, carol.nick, "behave")
    kicked = await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.member"
                                        and e.get("state_key") == carol_ghost
                                        and "behave" in e["content"].get("reason", ""))
    assert kicked["content"]["membership"] == "leave"
    dave = await make_irc_client("dave")
    await dave.join(channel)
    dave_ghost = ghost_of(slot, dave.nick)
    await alice.wait_for_membership(room_id, dave_ghost)
    await dave.quit("gone")
    await alice.wait_for_membership(room_id, dave_ghost, "leave")


async def test_a_nick_change_moves_the_ghost(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    old = bob.nick
    new = f"{old[:20]}x"
    await bob.change_nick(new)
    await alice.wait_for_membership(room_id, ghost_of(slot, new))
    await alice.wait_for_membership(room_id, ghost_of(slot, old), "leave")
    await bob.privmsg(channel, "new name, same bob")
    await alice.wait_for_event(room_id, body_is(ghost_of(slot, new), "new name, same bob"))


async def test_private_messages_both_ways(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
) -> None:
    alice, _room_id, bob, nick = conversation
    await bob.privmsg(nick, "psst, a secret")
    invite_room = await alice.wait_for_any_invite()
    dm = await alice.join(invite_room)
    event = await alice.wait_for_event(dm, body_is(ghost_of(slot, bob.nick), "psst, a secret"))
    assert event["content"]["msgtype"] == "m.text"
    await alice.send_text(dm, "secret received")
    line = await bob.wait_for(lambda line: line.command == "PRIVMSG" and line.target == bob.nick
                              and line.text == "secret received")
    assert line.is_from(nick)


async def private_chat(alice: MatrixTestClient, slot: AppserviceSlot, bob: IrcTestClient) -> str:
    """Alice invites bob's ghost to a direct chat (a private message to bob on IRC); its room."""
    ghost = ghost_of(slot, bob.nick)
    dm = await alice.create_room(invite=[ghost], is_direct=True, preset="trusted_private_chat")
    await alice.wait_for_membership(dm, ghost)
    return dm


async def test_a_matrix_user_starts_a_private_chat_by_inviting_a_ghost(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
) -> None:
    alice, _room_id, bob, nick = conversation
    dm = await private_chat(alice, slot, bob)
    await alice.send_text(dm, "hello privately")
    line = await bob.wait_for(lambda line: line.command == "PRIVMSG" and line.text == "hello privately")
    assert line.target == bob.nick
    assert line.is_from(nick)


async def test_a_private_message_to_a_nick_that_left_is_not_a_silent_drop(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
) -> None:
    alice, _room_id, bob, _nick = conversation
    dm = await private_chat(alice, slot, bob)
    await alice.send_text(dm, "are you there?")
    await bob.wait_for(lambda line: line.command == "PRIVMSG" and line.text == "are you there?")
    await bob.quit("gone for the day")

    await alice.send_text(dm, "hello?")
    told_room = await alice.join(await alice.wait_for_any_invite())
    told = await alice.wait_for_event(told_room, notice(slot.bot_user_id, "could not deliver"))
    assert f"to {bob.nick}" in told["content"]["body"]
    assert "nobody by that nick" in told["content"]["body"]


async def test_a_taken_nick_gets_a_stable_suffix_and_the_user_is_told(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=True)
    alice = await make_matrix_user("alice")
    localpart = alice.user_id.split(":")[0].lstrip("@")
    squatter = await make_irc_client(f"{localpart[:24]}[m]", unique=False)
    room_id = await portal(alice, slot, channel)
    await squatter.join(channel)
    await alice.send_text(room_id, "who am i?")
    line = await squatter.wait_for(said_in(channel, "who am i?"))
    assert line.source is not None
    assert line.source != squatter.nick
    assert line.source.endswith("[m]")
    assert "-" in line.source  # alice-k3[m]: a stable tag, never nick[m]1
    dm = await alice.wait_for_any_invite()
    told_room = await alice.join(dm)
    told = await alice.wait_for_event(told_room, notice(slot.bot_user_id, "is taken"))
    assert line.source in told["content"]["body"]
    assert "nick " in told["content"]["body"]


async def test_a_long_message_is_split_at_word_boundaries_within_512_bytes(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=True, max_lines=50)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    words = [f"wörd{n}-ü€" for n in range(320)]
    paragraphs = [" ".join(words[i:i + 80]) for i in range(0, len(words), 80)]
    text = "\n\n".join(paragraphs)
    assert len(text.encode()) > 3000
    start = bob.mark()
    await alice.send_text(room_id, text)
    await bob.wait_for(lambda line: line.command == "PRIVMSG" and words[-1] in line.text.split(), since=start)
    lines = bob.lines(lambda line: line.command == "PRIVMSG" and line.target == channel, since=start)
    assert len(lines) > 6
    assert all(len(line.untagged_bytes) <= 512 and line.untagged_bytes.endswith(b"\r\n") for line in lines)
    assert [w for line in lines for w in line.text.split()] == words  # every word, in order, none cut


async def test_a_line_break_injection_arrives_as_one_harmless_line(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=False)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    start = bob.mark()
    await alice.send_text(room_id, "innocent\rQUIT :pwned\r\0JOIN #evil")
    line = await bob.wait_for(said_in(channel, "innocent"), since=start)
    assert "QUIT :pwned" in line.text  # said, as text, on the same line
    await alice.send_text(room_id, "after the attempt")
    await bob.wait_for(said_in(channel, "after the attempt"), since=start)
    assert not bob.lines(lambda line: line.command in ("QUIT", "JOIN") and line.target != channel, since=start)
    assert not [line for line in bob.lines(lambda line: line.command == "JOIN", since=start) if "#evil" in line.raw]


async def test_a_matrix_moderator_kicks_an_irc_user(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
    make_irc_client: MakeIrcClient, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    await bob.mode(channel, f"+o {nick}")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and e["content"].get("users", {}).get(alice.user_id) == 50)
    spammer = await make_irc_client("spammer")
    await spammer.join(channel)
    ghost = ghost_of(slot, spammer.nick)
    await alice.wait_for_membership(room_id, ghost)
    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/kick",
                        json_body={"user_id": ghost, "reason": "no spam here"})
    kick = await bob.wait_for(lambda line: line.command == "KICK" and len(line.params) > 1
                              and line.params[1] == spammer.nick)
    assert kick.is_from(nick)  # done by alice's own connection, so IRC sees who did it
    assert kick.text == "no spam here"


async def test_the_directory_lists_networks_channels_and_users(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser,
) -> None:
    await start_irc()
    alice = await make_matrix_user("alice")
    protocols = await alice.request("GET", "/_matrix/client/v3/thirdparty/protocols")
    assert [i["network_id"] for i in protocols["irc"]["instances"]] == [slot.connector]
    locations = await alice.request("GET", "/_matrix/client/v3/thirdparty/location/irc",
                                     params={"network": slot.connector, "channel": "#Python"})
    assert [loc["alias"] for loc in locations] == [slot.alias("#python")]  # folded: #Python is #python
    users = await alice.request("GET", "/_matrix/client/v3/thirdparty/user/irc",
                                params={"network": slot.connector, "nickname": "Bob"})
    assert [u["userid"] for u in users] == [ghost_of(slot, "bob")]


async def test_two_networks_in_one_bridge_keep_their_channels_and_people_apart(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness,
    make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient, channel: str,
) -> None:
    # Both "networks" are the one test server: what matters is that the bridge keeps them apart.
    network = {"factory": "irc", "server": inspircd.host, "port": inspircd.port, "tls": False,
               "lines_per_second": 0, "virtual_users": False}
    await run_bridge(
        slot, "irc", connector={**network, "bot_nick": f"one{secrets.token_hex(2)}", "alias_prefix": "_bk_one_"},
        connectors={"second": {**network, "bot_nick": f"two{secrets.token_hex(2)}", "ghost_prefix": slot.ghost_prefix,
                               "alias_prefix": "_bk_two_"}},
        permissions={synapse.server_name: "admin"},
    )
    alice = await make_matrix_user("alice")
    first = await alice.join(f"#_bk_one_{channel}:{synapse.server_name}")
    second = await alice.join(f"#_bk_two_{channel}:{synapse.server_name}")
    assert first != second
    bob = await make_irc_client("bob")
    await bob.join(channel)
    await alice.send_text(second, "via the second network")
    line = await bob.wait_for(said_in(channel, "via the second network"))
    assert line.source is not None
    assert line.source.startswith("two")
    await bob.privmsg(channel, "heard on both")
    one_ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    two_ghost = slot.ghost_user_id(f"second_{bob.nick.lower()}")
    await alice.wait_for_event(first, body_is(one_ghost, "heard on both"))
    await alice.wait_for_event(second, body_is(two_ghost, "heard on both"))


async def test_an_existing_room_is_linked_to_a_channel_by_command(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    await start_irc(virtual_users=False)
    alice = await make_matrix_user("alice")
    room_id = await alice.create_room(name="our team room", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    await alice.send_text(room_id, f"!bk link {slot.connector} {channel.upper()}")
    linked = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "now the portal"))
    assert channel in linked["content"]["body"]  # #ROOMAB12 and #roomab12 are one channel
    bob = await make_irc_client("bob")
    await bob.join(channel)
    await bob.privmsg(channel, "plumbed!")
    await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "plumbed!"))


async def test_users_joining_a_portal_do_not_hold_up_its_later_events(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    # One new connection every 5 s once the bot's has used the burst: each user who joins the
    # portal (join_on_portal_join, shipped on) waits that long for their own connection.
    await start_irc(virtual_users=True, connects_per_second=0.2, connect_burst=1)
    bob = await make_irc_client("bob")
    await bob.join(channel)
    alice = await make_matrix_user("alice")
    room_id = await portal(alice, slot, channel)
    joiners = [await make_matrix_user(name) for name in ("carol", "dave")]
    for joiner in joiners:
        await joiner.join(room_id)
    # Three joins are ahead of this command in the room; their connections open one by one, 5 s
    # apart. Held up by them, the answer would come only after the third; it comes at once (the
    # margin of 10 s allows for a slow machine).
    await alice.send_text(room_id, "!bk help")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Commands you can use"))

    def own_connection_joined(line: Line) -> bool:
        return line.command == "JOIN" and line.target == channel and str(line.source or "").endswith("[m]")

    assert len(bob.lines(own_connection_joined)) < 3, (
        "the command's answer waited for the joiners' connections: " + repr(bob.lines(own_connection_joined)))
    # And every joiner's own connection still joins the channel, in turn.
    joined = await bob.wait_for_count(own_connection_joined, 3, timeout=60)
    assert len({line.source for line in joined}) == 3


async def test_an_idle_connection_closes_and_nothing_said_meanwhile_is_lost(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    # join_on_portal_join off: with it, alice's connection stays while she is in the portal.
    await start_irc(virtual_users=True, virtual_idle_minutes=0.05, join_on_portal_join=False)  # 3 s
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)
    room_id = await portal(alice, slot, channel)
    await alice.send_text(room_id, "before my nap")
    said = await bob.wait_for(said_in(channel, "before my nap"))
    assert said.source is not None
    await bob.wait_for(lambda line: line.command == "QUIT" and line.is_from(str(said.source)))
    await bob.privmsg(channel, "said while alice was away")
    await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "said while alice was away"))
    await alice.send_text(room_id, "back again")
    back = await bob.wait_for(said_in(channel, "back again"))
    assert back.source == said.source  # the same nick comes back


async def test_the_bridge_reconnects_after_the_irc_server_restarts(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    tmp_path: Path, channel: str,
) -> None:
    server = InspIRCd(tmp_path / "ircd")  # a server of this test's own: it is restarted under the bridge
    server.start()
    try:
        await run_bridge(
            slot, "irc", connector={"server": server.host, "port": server.port, "tls": False, "lines_per_second": 0,
                                    "bot_nick": f"bridge{secrets.token_hex(2)}", "virtual_users": False},
            permissions={synapse.server_name: "admin"},
        )
        alice = await make_matrix_user("alice")
        room_id = await portal(alice, slot, channel)
        server.restart()  # every connection drops; the bot must come back and rejoin the channel
        bob = await IrcTestClient.connect(server.host, server.port, f"bob{secrets.token_hex(2)}")
        try:
            since = bob.mark()
            await bob.join(channel)

            def bot_is_in(line: Line) -> bool:
                # Either the bot was back before bob (NAMES lists it) or it comes in after him.
                names = line.command == "353" and any(n.lstrip("@+").startswith("bridge") for n in line.text.split())
                joined = line.command == "JOIN" and line.target == channel and (line.source or "").startswith("bridge")
                return names or joined

            await bob.wait_for(bot_is_in, timeout=60, since=since)
            await bob.privmsg(channel, "are you back?")
            await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "are you back?"))
            await alice.send_text(room_id, "yes, back")
            await bob.wait_for(said_in(channel, "yes, back"))
        finally:
            await bob.close()
    finally:
        server.stop()


@pytest.mark.parametrize("virtual_users", [False, True], ids=["relay", "virtual-user"])
async def test_a_message_the_irc_server_refuses_is_not_a_silent_drop(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str, virtual_users: bool,
) -> None:
    """bob, the channel's operator, makes it moderated (+m): the server refuses alice's line, and
    alice is told so privately, with the channel and the server's reason."""
    await start_irc(virtual_users=virtual_users)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)  # first in: bob is the operator
    room_id = await portal(alice, slot, channel)
    await alice.send_text(room_id, "before +m")
    await bob.wait_for(said_in(channel, "before +m"))
    since = bob.mark()
    await bob.mode(channel, "+m")
    await bob.wait_for(lambda ln: ln.command == "MODE" and ln.target == channel, since=since)

    await alice.send_text(room_id, "after +m")
    dm = await alice.wait_for_any_invite()
    told_room = await alice.join(dm)
    told = await alice.wait_for_event(told_room, notice(slot.bot_user_id, "could not deliver"))
    assert channel in told["content"]["body"]
    assert "moderated" in told["content"]["body"]
    assert not bob.lines(said_in(channel, "after +m"))


@pytest.mark.parametrize("virtual_users", [False, True], ids=["relay", "virtual-user"])
async def test_lines_waiting_on_pacing_survive_a_dropped_connection(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str, virtual_users: bool,
) -> None:
    """Output is paced (here one line per 2 s): Matrix messages already accepted wait in the
    connection's queue. When the server drops that connection, they go out once it is back and
    has rejoined the channel: in order, once each, none lost with the connection."""
    await start_irc(virtual_users=virtual_users, lines_per_second=0.5, burst=1)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    since = bob.mark()
    bob.send_raw("OPER oper operpw")
    await bob.wait_for(lambda ln: ln.command == "381", since=since)  # RPL_YOUREOPER: bob may KILL

    for i in range(5):
        await alice.send_text(room_id, f"queued {i}")
    first = await bob.wait_for(said_in(channel, "queued 0"))  # the rest wait for the pacing
    assert first.source is not None
    bob.send_raw(f"KILL {first.source} :the connection drops with lines queued")

    lines = await bob.wait_for_count(said_in(channel, "queued "), 5, timeout=90)
    assert [line.text.rsplit(" ", 1)[1] for line in lines] == ["0", "1", "2", "3", "4"]
    assert len(bob.lines(said_in(channel, "queued "))) == 5


async def test_lines_written_into_a_dead_route_are_sent_again(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    inspircd: InspIRCd, channel: str,
) -> None:
    """The route to the server dies without a word (no FIN, no RST): lines the bot writes go
    nowhere. Its keepalive notices the silence, it connects again, and the lines the server
    never echoed (IRCv3 echo-message) are sent again: each arrives once, in order."""
    async with TcpCutter(inspircd.host, inspircd.port) as cutter:
        await start_irc(virtual_users=False, server=cutter.host, port=cutter.port, keepalive_seconds=1)
        alice = await make_matrix_user("alice")
        bob = await make_irc_client("bob")  # straight to the server, not through the cutter
        room_id = await portal(alice, slot, channel)
        await bob.join(channel)
        await alice.send_text(room_id, "before the cut")
        await bob.wait_for(said_in(channel, "before the cut"))

        assert cutter.cut() == 1  # the bot's connection
        for i in range(3):
            await alice.send_text(room_id, f"into the void {i}")
        await cutter.wait_cut_client_gone(timeout=30)  # the bot gave up on the silence

        lines = await bob.wait_for_count(said_in(channel, "into the void"), 3, timeout=60)
        assert [line.text.rsplit(" ", 1)[1] for line in lines] == ["0", "1", "2"]
        await alice.send_text(room_id, "after the cut")
        await bob.wait_for(said_in(channel, "after the cut"))
        assert len(bob.lines(said_in(channel, "into the void"))) == 3


@pytest.mark.parametrize("virtual_users", [False, True], ids=["relay", "virtual-user"])
async def test_a_long_message_paced_out_survives_a_sigkill_of_the_bridge(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str, virtual_users: bool,
) -> None:
    """A 12-line message goes out paced (a burst of 3, then 2 lines a second). The bridge is
    killed with SIGKILL once bob has seen 4 lines, and started again on the same database: the
    other lines arrive, in order, none lost; at most the line in flight at the kill comes twice."""
    process = await start_irc(virtual_users=virtual_users, lines_per_second=2, burst=3, max_lines=12)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    await alice.send_text(room_id, "warming up")  # the relay or alice's own connection is in the channel
    await bob.wait_for(said_in(channel, "warming up"))
    expected = [f"line {n:02d} of 12" for n in range(1, 13)]

    await alice.send_text(room_id, "\n".join(expected))
    await bob.wait_for_count(said_in(channel, " of 12"), 4, timeout=30)  # the burst, then one paced line
    await process.kill()
    await process.start_ready()

    await bob.wait_for(said_in(channel, "line 12 of 12"), timeout=90)
    said = [line.text[line.text.index("line "):] for line in bob.lines(said_in(channel, " of 12"))]
    once_each = [text for index, text in enumerate(said) if index == 0 or text != said[index - 1]]
    assert once_each == expected, said  # all twelve, in order: a line repeated comes right after itself
    assert len(said) - len(expected) <= 1, said  # only the line in flight at the kill may come twice


async def test_irc_messages_reach_matrix_while_a_long_message_is_paced_out(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    """alice's 12 lines go out over about 5 s (2 lines a second), and her message counts as
    handled only then; bob's answer meanwhile is not held back behind it on its way to Matrix."""
    await start_irc(virtual_users=False, lines_per_second=2, burst=1, max_lines=12)
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    await alice.send_text(room_id, "\n".join(f"line {n:02d} of 12" for n in range(1, 13)))
    await bob.wait_for(said_in(channel, "line 01 of 12"), timeout=30)
    await bob.privmsg(channel, "I am reading along")
    await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "I am reading along"))
    assert not bob.lines(said_in(channel, "line 12 of 12"))  # alice's message is still going out


async def test_a_message_keeps_the_time_the_irc_server_gave_it(
    conversation: tuple[MatrixTestClient, str, IrcTestClient, str], slot: AppserviceSlot,
    make_irc_client: MakeIrcClient, channel: str,
) -> None:
    from datetime import datetime

    alice, room_id, bob, _nick = conversation
    watcher = await make_irc_client("watch", caps=["server-time"])
    await watcher.join(channel)
    await bob.privmsg(channel, "what time is it on the server?")
    line = await watcher.wait_for(said_in(channel, "what time is it on the server?"))
    said_at = int(datetime.fromisoformat(line.tags["time"].replace("Z", "+00:00")).timestamp() * 1000)
    event = await alice.wait_for_event(room_id, body_is(ghost_of(slot, bob.nick), "what time is it on the server?"))
    assert event["origin_server_ts"] == said_at  # IRCv3 server-time, kept through timestamp massaging
