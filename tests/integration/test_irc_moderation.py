"""Moderation both ways between IRC and Matrix: IRC bans of bridged Matrix users, the channel's
modes as the portal's join rule, power levels and op/voice. A real Synapse, a real `bridgekit
run`, a real InspIRCd, and plain IRC clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.matrix_steps import notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, SynapseHarness
from tests.integration import test_irc_bridge as stories
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

channel = stories.channel
start_irc = stories.start_irc
conversation = stories.conversation
Conversation = tuple[MatrixTestClient, str, IrcTestClient, str]


def member_event(user_id: str, membership: str) -> Any:
    return lambda e: (e.get("type") == "m.room.member" and e.get("state_key") == user_id
                      and e["content"].get("membership") == membership)


async def test_an_irc_ban_of_one_matrix_user_bans_them_and_one_of_the_bridges_host_is_only_explained(
    conversation: Conversation, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    carol = await make_matrix_user("carol")  # another Matrix user, watching the portal
    await carol.join(room_id)
    joined = next(line for line in bob.received if line.command == "JOIN" and line.is_from(nick))
    assert joined.user is not None
    assert joined.host is not None

    # Everyone bridged comes from the bridge's host: that ban is not mirrored, and the room is told.
    await bob.mode(channel, f"+b *!*@{joined.host}")
    told = await carol.wait_for_event(room_id, notice(slot.bot_user_id, f"banned *!*@{joined.host}"))
    assert "not mirrored" in told["content"]["body"]
    assert "the bridge itself" in told["content"]["body"]
    member = await carol.get_state(room_id, "m.room.member", alice.user_id)
    assert member["membership"] == "join"

    # A ban on alice's own ident is a ban of alice.
    mask = f"*!*{joined.user.lstrip('~')}@*"
    await bob.mode(channel, f"+b {mask}")
    banned = await carol.wait_for_event(room_id, member_event(alice.user_id, "ban"))
    assert banned["sender"] == slot.bot_user_id
    assert mask in banned["content"]["reason"]
    assert bob.nick in banned["content"]["reason"]

    await bob.mode(channel, f"-b {mask}")
    await carol.wait_for_event(room_id, member_event(alice.user_id, "leave"))
    await alice.join(room_id)  # she may come back
    await carol.wait_for_events(room_id, member_event(alice.user_id, "join"), 2)
    bans = [e for e in carol.events(room_id) if member_event(alice.user_id, "ban")(e)]
    assert len(bans) == 1  # the shared-host ban banned no one


async def test_a_key_or_invite_only_channel_makes_the_portal_invite_only_and_back(
    conversation: Conversation, slot: AppserviceSlot, channel: str,
) -> None:
    alice, room_id, bob, _nick = conversation
    rule = await alice.get_state(room_id, "m.room.join_rules")
    assert rule["join_rule"] == "public"

    def join_rule(value: str) -> Any:
        return lambda e: e.get("type") == "m.room.join_rules" and e["content"].get("join_rule") == value

    public_before = len([e for e in alice.events(room_id) if join_rule("public")(e)])
    await bob.mode(channel, "+k sesame")
    await alice.wait_for_event(room_id, join_rule("invite"))
    await bob.mode(channel, "+i")
    await bob.mode(channel, "-k sesame")
    await bob.mode(channel, "-i")
    await alice.wait_for_events(room_id, join_rule("public"), public_before + 1)
    rules = [e["content"]["join_rule"] for e in alice.events(room_id) if e.get("type") == "m.room.join_rules"]
    assert rules[-2:] == ["invite", "public"]  # +i while keyed changed nothing; public again only when both went


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_ports_connected_to(port: int, pid: int) -> list[int]:
    """``pid``'s ends of its established TCP connections to ``port`` (``/proc/net/tcp``, and the
    process's open sockets by inode)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    found.append(int(local.rsplit(":", 1)[1], 16))
    return found


async def identd_answers(identd_port: int, queries: list[str]) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", identd_port)
    answers = []
    try:
        for query in queries:  # one query per connection is what servers do; a few per connection is allowed
            writer.write(f"{query}\r\n".encode())
            answers.append((await reader.readline()).decode().strip())
    finally:
        writer.close()
    return answers


async def test_identd_names_each_bridged_users_connection_and_nobody_elses(
    start_irc: stories.StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, inspircd: InspIRCd, channel: str,
) -> None:
    port = free_port()
    bridge = await start_irc(identd={"host": "127.0.0.1", "port": port})
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)
    room_id = await stories.portal(alice, slot, channel)
    await alice.send_text(room_id, "who am i")
    said = await bob.wait_for(stories.said_in(channel, "who am i"))
    assert said.user is not None
    ident = said.user.lstrip("~")
    assert bridge.pid is not None

    bridge_ports = local_ports_connected_to(inspircd.port, bridge.pid)
    answers = await identd_answers(port, [f"{local}, {inspircd.port}" for local in bridge_ports])
    assert sorted(reply.rsplit(" : ", 1)[1] for reply in answers) == sorted(["bridge", ident])
    assert all(" : USERID : UNIX : " in reply for reply in answers)
    # This test's own IRC clients (bob) are on the same host: their ports are nobody the bridge knows.
    theirs = local_ports_connected_to(inspircd.port, os.getpid())
    assert theirs
    for reply in await identd_answers(port, [f"{local}, {inspircd.port}" for local in theirs]):
        assert reply.endswith(" : ERROR : NO-USER")
    assert await identd_answers(port, ["not a query"]) == ["0, 0 : ERROR : INVALID-PORT"]


async def set_level(admin: MatrixTestClient, room_id: str, user_id: str, level: int) -> None:
    levels = await admin.get_state(room_id, "m.room.power_levels")
    levels.setdefault("users", {})[user_id] = level
    await admin.send_state(room_id, "m.room.power_levels", levels)


def level_of(levels: dict[str, Any], user_id: str) -> int:
    return int(levels.get("users", {}).get(user_id, levels.get("users_default", 0)))


async def test_power_levels_and_op_voice_follow_each_other_and_settle(
    conversation: Conversation, slot: AppserviceSlot, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    channel: str,
) -> None:
    """alice (a room admin) changes dave's level on Matrix: his connection gets the table's mode on
    IRC; bob (a channel op) changes dave's modes on IRC: his level follows. Nothing bounces: a
    level with no mode of its own (60) stays, and the bot sends no MODE of its own afterwards."""
    alice, room_id, bob, alice_nick = conversation
    bot_nick = next(str(line.source) for line in bob.received if line.command == "JOIN" and line.target == channel
                    and not line.is_from(bob.nick) and not line.is_from(alice_nick))
    await bob.mode(channel, f"+o {bot_nick}")
    async with MatrixTestClient(synapse.url, slot.as_token, slot.bot_user_id) as bridge_bot:
        await set_level(bridge_bot, room_id, alice.user_id, 100)  # the portal's creator makes alice an admin
    dave = await make_matrix_user("dave")
    await dave.join(room_id)
    await dave.send_text(room_id, "dave here")
    dave_nick = str((await bob.wait_for(stories.said_in(channel, "dave here"))).source)

    def bot_mode(sign_and_mode: str) -> Any:
        return lambda line: (line.command == "MODE" and line.target == channel and line.is_from(bot_nick)
                             and sign_and_mode in line.params[1] and dave_nick in line.params[2:])

    async def settled(word: str) -> None:
        """Both directions have carried a message since: any bounce would have come before it."""
        await alice.send_text(room_id, f"settle {word}")
        await bob.wait_for(stories.said_in(channel, f"settle {word}"))
        await bob.privmsg(channel, f"ack {word}")
        await alice.wait_for_event(room_id, stories.body_is(stories.ghost_of(slot, bob.nick), f"ack {word}"))

    since = bob.mark()
    await set_level(alice, room_id, dave.user_id, 50)
    await bob.wait_for(bot_mode("+o"), since=since)
    await set_level(alice, room_id, dave.user_id, 60)  # op already: nothing new on IRC
    await settled("sixty")
    assert level_of(await alice.get_state(room_id, "m.room.power_levels"), dave.user_id) == 60

    await bob.mode(channel, f"-o+v {dave_nick} {dave_nick}")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and level_of(e["content"], dave.user_id) == 10)
    after_irc = bob.mark()
    await settled("voice")
    assert level_of(await alice.get_state(room_id, "m.room.power_levels"), dave.user_id) == 10
    assert not bob.lines(lambda line: line.command == "MODE" and line.is_from(bot_nick), since=after_irc)

    await set_level(alice, room_id, dave.user_id, 0)
    await bob.wait_for(bot_mode("-"), since=after_irc)
    await settled("zero")
    levels = [level_of(e["content"], dave.user_id) for e in alice.events(room_id) if e["type"] == "m.room.power_levels"]
    assert levels[-1] == 0
    assert len(bob.lines(lambda line: line.command == "MODE" and line.is_from(bot_nick), since=since)) == 2

    # Power held on Matrix is given again when the connection joins anew (leave and come back).
    await set_level(alice, room_id, dave.user_id, 50)
    await bob.wait_for(bot_mode("+o"), since=after_irc)
    await dave.leave(room_id)
    await bob.wait_for(lambda line: line.command == "PART" and line.is_from(dave_nick))
    back = bob.mark()
    await dave.join(room_id)
    await bob.wait_for(lambda line: line.command == "JOIN" and line.is_from(dave_nick), since=back)
    await bob.wait_for(bot_mode("+o"), since=back)


async def test_joining_the_portal_joins_the_channel_and_leaving_it_parts(
    start_irc: stories.StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, channel: str,
) -> None:
    await start_irc(virtual_users=True)  # join_on_portal_join: on by default
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await bob.join(channel)
    room_id = await stories.portal(alice, slot, channel)
    # alice has said nothing: IRC people see her listening all the same.
    joined = await bob.wait_for(lambda line: line.command == "JOIN" and line.target == channel
                                and str(line.source).endswith("[m]"))
    bob.send_raw(f"WHOIS {joined.source}")
    whois = await bob.wait_for(lambda line: line.command == "311" and len(line.params) > 1
                               and line.params[1] == joined.source)
    assert whois.text == alice.user_id
    await alice.leave(room_id)
    await bob.wait_for(lambda line: line.command == "PART" and line.target == channel
                       and line.is_from(str(joined.source)))


async def test_a_matrix_ban_sets_the_chosen_mask_and_the_unban_lifts_the_same_one(
    conversation: Conversation, slot: AppserviceSlot, make_irc_client: MakeIrcClient, channel: str,
) -> None:
    alice, room_id, bob, nick = conversation
    await bob.mode(channel, f"+o {nick}")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.power_levels"
                               and e["content"].get("users", {}).get(alice.user_id) == 50)
    spammer = await make_irc_client("spammer")
    joined = await spammer.join(channel)
    ghost = stories.ghost_of(slot, spammer.nick)
    await alice.wait_for_membership(room_id, ghost)
    since = bob.mark()

    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/ban", json_body={"user_id": ghost})
    banned = await bob.wait_for(lambda line: line.command == "MODE" and line.target == channel, since=since)
    assert banned.params[1:] == ("+b", f"*!{joined.user}@{joined.host}")  # the ban-mask rule's choice
    assert banned.is_from(nick)  # alice's own connection
    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/unban", json_body={"user_id": ghost})
    lifted = await bob.wait_for(lambda line: line.command == "MODE" and line.target == channel
                                and line.params[1] == "-b", since=since)
    assert lifted.params[2:] == banned.params[2:]
    await spammer.join(channel)  # may come back
