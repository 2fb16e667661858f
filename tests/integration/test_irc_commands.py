"""The IRC commands of the management room end to end (real Synapse, `bridgekit run`, InspIRCd):
``join`` with a key into a ``+k`` channel, ``whois`` answered in the room, ``raw`` for bridge
admins only. One story per test."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml

from bridgekit.demo.irc_client import IrcTestClient, Line
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.matrix_steps import from_sender, management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

Event = dict[str, Any]
StartIrc = Callable[..., Awaitable[BridgeProcess]]


@pytest.fixture
def channel() -> str:
    return f"#cmd{secrets.token_hex(3)}"


@pytest.fixture
def start_irc(slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness) -> StartIrc:
    """The bridge on InspIRCd; ``admins``: the only bridge admins (everyone else on the
    homeserver is a 'user'); none given: everyone is an admin."""
    async def start(*, admins: tuple[str, ...] | None = None, **settings: Any) -> BridgeProcess:
        permissions = ({synapse.server_name: "admin"} if admins is None
                       else {synapse.server_name: "user", **dict.fromkeys(admins, "admin")})
        return await run_bridge(
            slot, "irc",
            connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0,
                       "bot_nick": f"cbridge{secrets.token_hex(2)}", **settings},
            permissions=permissions,
            appservice={"public_url": f"http://127.0.0.1:{slot.bridge_port}"},
        )

    return start


def said_in(target: str, containing: str) -> Callable[[Line], bool]:
    return lambda line: line.command in ("PRIVMSG", "NOTICE") and line.target == target and containing in line.text


def body_is(sender: str, body: str) -> Callable[[Event], bool]:
    return lambda e: from_sender(sender)(e) and e["content"].get("body") == body


def stored_values(bridge: BridgeProcess, prefix: str) -> list[str]:
    """The bridge database's kv rows whose key starts with ``prefix`` (read from its file)."""
    config = yaml.safe_load(bridge.config_path.read_text())
    path = str(config["database"]["url"]).removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as database:
        rows = database.execute("SELECT value FROM kv WHERE key LIKE ?", (f"{prefix}%",)).fetchall()
    return [str(row[0]) for row in rows]


async def test_join_with_a_key_enters_a_keyed_channel_and_its_room_works_both_ways(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    bob = await make_irc_client("bob")
    await bob.join(channel)  # first in: bob is the channel's operator
    since = bob.mark()
    bob.send_raw(f"MODE {channel} +k s3cret")
    await bob.wait_for(lambda line: line.command == "MODE" and line.target == channel, since=since)
    bridge = await start_irc(virtual_users=True)
    alice = await make_matrix_user("alice")
    manage = await management_room(alice, slot)

    # A wrong key: the server's refusal is told, and nothing is kept.
    await alice.send_text(manage, f"join {slot.connector} {channel} wrong")
    await alice.wait_for_event(manage, notice(slot.bot_user_id, "the channel needs a key"))
    assert stored_values(bridge, "chankey:") == []

    command = await alice.send_text(manage, f"join {slot.connector} {channel} s3cret")
    await alice.wait_for_event(manage, notice(slot.bot_user_id, "invited to its room"))
    room_id = await alice.wait_for_any_invite()
    await alice.join(room_id)
    # The bot is in the channel too (it listens for the room), with the same key.
    await bob.wait_for(lambda line: line.command == "JOIN" and line.target == channel
                       and (line.source or "").startswith("cbridge"), since=since)

    await alice.send_text(room_id, "hello behind the key")
    line = await bob.wait_for(said_in(channel, "hello behind the key"))
    assert line.source is not None
    assert line.source.endswith("[m]")  # alice's own connection, in the keyed channel
    await bob.privmsg(channel, "welcome in")
    ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    await alice.wait_for_event(room_id, body_is(ghost, "welcome in"))

    # Kicked, the bot comes back in with the kept key.
    since = bob.mark()
    bot = str(next(line for line in bob.received if line.command == "JOIN" and line.target == channel
                   and (line.source or "").startswith("cbridge")).source).split("!")[0]
    bob.send_raw(f"KICK {channel} {bot} :testing the key")
    await bob.wait_for(lambda line: line.command == "JOIN" and line.is_from(bot), since=since)
    await bob.privmsg(channel, "still hearing me?")
    await alice.wait_for_event(room_id, body_is(ghost, "still hearing me?"))

    # The key is kept encrypted, and the command that carried it is redacted.
    stored = stored_values(bridge, "chankey:")
    assert len(stored) == 1
    assert "s3cret" not in stored[0]
    assert stored[0].strip('"').startswith("v1:")
    redacted = await alice.get_event(manage, command)
    assert "body" not in redacted["content"]


async def test_whois_is_answered_in_the_room(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    bob = await make_irc_client("bob", realname="Bob the Builder")
    await bob.join(channel)
    await start_irc(virtual_users=True)
    alice = await make_matrix_user("alice")
    manage = await management_room(alice, slot)
    await alice.send_text(manage, f"whois {slot.connector} {bob.nick}")
    answer = await alice.wait_for_event(manage, notice(slot.bot_user_id, f"{bob.nick} on {slot.connector}:"))
    text = answer["content"]["body"]
    assert f"{bob.nick}!" in text
    assert "(Bob the Builder)" in text
    assert f"channels: @{channel}" in text
    assert "server: " in text
    assert "idle: " in text

    await alice.send_text(manage, f"whois {slot.connector} nobody{secrets.token_hex(3)}")
    await alice.wait_for_event(manage, notice(slot.bot_user_id, "Nobody is nobody"))


async def test_raw_is_for_bridge_admins_only(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
) -> None:
    admin = await make_matrix_user("admin")
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    await start_irc(virtual_users=True, admins=(admin.user_id,))

    manage = await management_room(alice, slot)
    await alice.send_text(manage, f"raw {slot.connector} PRIVMSG {bob.nick} :from alice")
    await alice.wait_for_event(manage, notice(slot.bot_user_id, "needs the 'admin' permission level"))

    own = await management_room(admin, slot)
    # Still through the output gate: one line, no control characters (here a CTCP), 510 bytes.
    await admin.send_text(own, f"raw {slot.connector} PRIVMSG {bob.nick} :\x01VERSION\x01")
    await admin.wait_for_event(own, notice(slot.bot_user_id, "without control characters"))
    await admin.send_text(own, f"raw {slot.connector} PRIVMSG {bob.nick} :{'x' * 510}")
    await admin.wait_for_events(own, notice(slot.bot_user_id, "at most 510 bytes"), 2)
    await admin.send_text(own, f"raw {slot.connector} PRIVMSG {bob.nick} :from the admin")
    await admin.wait_for_event(own, notice(slot.bot_user_id, "Sent to"))
    line = await bob.wait_for(said_in(bob.nick, "from the admin"))
    assert line.text == "from the admin"
    assert not bob.lines(said_in(bob.nick, "from alice"))


async def asked_to_link(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str, minutes: float,
) -> tuple[MatrixTestClient, str, IrcTestClient, IrcTestClient, Line]:
    """bob (the channel's operator) and carol (not one) are in the channel; alice, a 'user' of the
    bridge and the admin of her room, links it: the bot asks bob. Returns (alice, her room, bob,
    carol, the question bob got)."""
    admin = await make_matrix_user("admin")
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob")
    carol = await make_irc_client("carol")
    await bob.join(channel)
    await carol.join(channel)
    await start_irc(virtual_users=False, admins=(admin.user_id,), link_approval_minutes=minutes)
    room_id = await alice.create_room(name="alice's room", invite=[slot.bot_user_id])
    await alice.wait_for_membership(room_id, slot.bot_user_id)
    await alice.send_text(room_id, f"!bk link {slot.connector} {channel}")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "needs the approval"))
    question = await bob.wait_for(lambda line: line.command == "PRIVMSG" and line.target == bob.nick
                                  and "wants to bridge" in line.text)
    assert alice.user_id in question.text
    assert channel in question.text
    assert room_id in question.text
    assert not carol.lines(lambda line: "wants to bridge" in line.text)  # only operators are asked
    return alice, room_id, bob, carol, question


async def test_a_room_admins_link_is_approved_by_a_channel_operator_on_irc(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    alice, room_id, bob, carol, question = await asked_to_link(
        start_irc, slot, make_matrix_user, make_irc_client, channel, minutes=2)
    bot = str(question.source).split("!")[0]
    await carol.privmsg(bot, f"yes {channel}")  # not an operator: does not count
    await carol.wait_for(lambda line: line.command == "NOTICE" and "does not count" in line.text)
    await bob.privmsg(bot, "yes")
    await bob.wait_for(lambda line: line.command == "NOTICE" and "Thank you" in line.text)
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "approved. This room is now the portal"))

    await bob.privmsg(channel, "bridged with my blessing")
    ghost = slot.ghost_user_id(f"{slot.connector}_{bob.nick.lower()}")
    await alice.wait_for_event(room_id, body_is(ghost, "bridged with my blessing"))


async def test_a_room_admins_link_is_refused_without_an_operators_yes(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    alice, room_id, _bob, carol, question = await asked_to_link(
        start_irc, slot, make_matrix_user, make_irc_client, channel, minutes=0.25)
    bot = str(question.source).split("!")[0]
    await carol.privmsg(bot, f"yes {channel}")
    await carol.wait_for(lambda line: line.command == "NOTICE" and "does not count" in line.text)
    refused = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "was not approved"), timeout=45)
    assert f"no operator of {channel} answered within 0.25 minutes" in refused["content"]["body"]
    # Nothing was linked: the bot never joined the channel.
    assert not carol.lines(lambda line: line.command == "JOIN" and line.is_from(bot))


async def test_msg_names_topic_mode_part_listrooms_and_quit_from_the_management_room(
    start_irc: StartIrc, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    channel: str,
) -> None:
    bob = await make_irc_client("bob")
    await bob.join(channel)
    bob.send_raw(f"TOPIC {channel} :the old topic")
    await start_irc(virtual_users=True)
    alice = await make_matrix_user("alice")
    manage = await management_room(alice, slot)
    net = slot.connector

    async def ask(command: str, answer: str) -> str:
        await alice.send_text(manage, command)
        event = await alice.wait_for_event(manage, notice(slot.bot_user_id, answer))
        return str(event["content"]["body"])

    # msg: a private room with bob, and the text from alice's own connection.
    said = await ask(f"msg {net} {bob.nick} hello privately", f"Sent to {bob.nick}")
    line = await bob.wait_for(said_in(bob.nick, "hello privately"))
    assert line.source is not None
    nick = line.source.split("!")[0]
    dm = await alice.wait_for_any_invite()
    assert dm in said
    await alice.join(dm)
    await bob.privmsg(nick, "hello back")
    ghost = slot.ghost_user_id(f"{net}_{bob.nick.lower()}")
    await alice.wait_for_event(dm, body_is(ghost, "hello back"))

    await ask(f"join {net} {channel}", "invited to its room")
    names = await ask(f"names {net} {channel}", f"in {channel} on {net}:")
    assert f"@{bob.nick}" in names.split()
    assert nick in names.split()
    topic = await ask(f"topic {net} {channel}", f"The topic of {channel}")
    assert topic.endswith(": the old topic")
    assert f"set by {bob.nick}" in topic
    listed = await ask(f"listrooms {net}", f"Channels of {net}")
    assert f"{channel}: {slot.alias(channel)}" in listed

    # mode: only once alice's connection is an operator of the channel.
    await ask(f"mode {net} {channel} +m", "You are not an operator")
    since = bob.mark()
    bob.send_raw(f"MODE {channel} +o {nick}")
    await bob.wait_for(lambda line: line.command == "MODE" and nick in line.params, since=since)
    await ask(f"mode {net} {channel} +b *!*@*", "would match almost everyone")
    await ask(f"mode {net} {channel} +m", "Sent MODE")
    await bob.wait_for(lambda line: line.command == "MODE" and line.is_from(nick) and line.raw.endswith("+m"))

    await ask(f"part {net} {channel} see you", f"You left {channel}")
    part = await bob.wait_for(lambda line: line.command == "PART" and line.is_from(nick))
    assert part.text == "see you"
    await ask(f"quit {net}", f"Your connection to {net} is closed")

    async def gone() -> bool:  # no channel in common any more: WHOIS says whether she is gone
        since = bob.mark()
        bob.send_raw(f"WHOIS {nick}")
        await bob.wait_for(lambda line: line.command == "318", since=since)
        return bool(bob.lines(lambda line: line.command == "401" and nick in line.params, since=since))

    await eventually(gone, what=f"{nick} gone from the network", timeout=10)
