"""IRC -> Matrix translation fed ``irc.client.Event``s as the ``irc`` package hands them over:
what the bot hears in a channel, or a Matrix user's connection privately, becomes remote events
(and the lines the bot sends in answer), and the network's membership follows. No socket."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import irc.client

from bridgekit import (
    ChatID,
    RemoteChatInfo,
    RemoteEvent,
    RemoteMember,
    RemoteMessage,
    RemotePower,
    RemoteUserID,
    UserID,
)
from bridges.irc import inbound
from bridges.irc.connection_state import ConnectionState
from bridges.irc.network import IrcNetwork

BOT = "bridge"
SERVER = "irc.test"
ALICE = UserID("@alice:example.org")
PORTAL = ChatID("#chat")


def event(kind: str, source: str, target: str | None, *arguments: str,
          tags: list[dict[str, str]] | None = None) -> irc.client.Event:
    return irc.client.Event(kind, irc.client.NickMask(source), target, list(arguments), tags or [])


def bot_connection(*isupport: str) -> ConnectionState:
    """The bot's connection after the welcome and the server's ISUPPORT tokens."""
    state = ConnectionState(BOT, caps=(), next_nick=lambda attempt: f"{BOT}{attempt}")
    state.hear(event("welcome", SERVER, BOT, "Welcome"))
    if isupport:
        state.hear(event("featurelist", SERVER, BOT, *isupport, "are supported by this server"))
    return state


def network(*members: str) -> IrcNetwork:
    """A network whose ``#chat`` is a portal with ``members`` in it, the bot's nick ours and
    ``alice[m]`` the connection of @alice."""
    made = IrcNetwork("net", ghost_for=lambda sender: f"@_net_{sender}:example.org", sender_of_ghost=lambda _: None)
    made.portals.add(PORTAL)
    channel = made.channel("#Chat")
    for member in members:
        channel.members[made.fold(member)] = member
    made.claim(BOT, None)
    made.claim("alice[m]", ALICE)
    return made


def unstamped(events: list[RemoteEvent]) -> list[RemoteEvent]:
    """The events without their change IDs (unique per change, by design)."""
    return [dataclasses.replace(cast(Any, e), change_id="") if hasattr(e, "change_id") else e for e in events]


def test_a_line_said_in_a_portal_becomes_a_message_with_the_networks_id_time_and_pills() -> None:
    net = network("Bob")
    said = inbound.from_channel(event(
        "pubmsg", "Carol!c@host", "#Chat", "bob: look",
        tags=[{"key": "msgid", "value": "m-1"}, {"key": "time", "value": "2026-01-02T03:04:05.678Z"}],
    ), net, bot_connection())
    assert len(said.remote) == 1
    message = said.remote[0]
    assert isinstance(message, RemoteMessage)
    assert (message.chat_id, message.message_id, message.sender_id, message.sender_name, message.msgtype) == (
        "#chat", "m-1", "carol", "Carol", "m.text")
    assert message.timestamp_ms == 1767323045678
    assert message.mentions == ("@_net_bob:example.org",)
    assert net.recall("m-1") is not None  # for replies and edits


def test_the_echo_filter_drops_what_the_bridges_own_connections_say() -> None:
    net, bot = network(), bot_connection()
    assert inbound.from_channel(event("pubmsg", "alice[m]!a@host", "#chat", "hi"), net, bot).remote == []
    assert inbound.from_channel(event("action", "Alice[M]!a@host", "#chat", "waves"), net, bot).remote == []
    assert inbound.from_channel(event("topic", "alice[m]!a@host", "#chat", "new"), net, bot).remote == []
    assert inbound.private_message(event("privmsg", "bridge!b@host", "alice[m]", "psst"), net, ALICE).remote == []
    assert inbound.from_us(net, "BRIDGE")
    assert not inbound.from_us(net, "bob")


def test_what_is_said_in_a_channel_that_is_no_portal_is_not_bridged() -> None:
    said = inbound.from_channel(event("pubmsg", "bob!b@host", "#elsewhere", "hi"), network(), bot_connection())
    assert said.remote == []


MEMBERSHIP = [
    ("join", event("join", "dave!d@host", "#chat"),
     [RemoteMember(PORTAL, RemoteUserID("dave"), "join", sender_name="dave")], {"bob", "dave"}),
    ("part", event("part", "bob!b@host", "#chat", "bye"),
     [RemoteMember(PORTAL, RemoteUserID("bob"), "leave", reason="bye", sender_name="bob")], set()),
    ("quit", event("quit", "bob!b@host", None, "gone"),
     [RemoteMember(PORTAL, RemoteUserID("bob"), "leave", reason="gone", sender_name="bob")], set()),
    ("kick", event("kick", "op!o@host", "#chat", "bob", "spam"),
     [RemoteMember(PORTAL, RemoteUserID("bob"), "kick", by=RemoteUserID("op"), reason="spam", sender_name="bob")],
     set()),
    ("nick", event("nick", "bob!b@host", "Robert"),
     [RemoteMember(PORTAL, RemoteUserID("bob"), "leave", reason="is now known as Robert", sender_name="bob"),
      RemoteMember(PORTAL, RemoteUserID("robert"), "join", sender_name="Robert")], {"robert"}),
]


def test_membership_changes_become_member_events_and_the_network_follows() -> None:
    for name, heard, expected, members_after in MEMBERSHIP:
        net = network("bob")
        said = inbound.from_channel(heard, net, bot_connection())
        assert unstamped(said.remote) == expected, name
        assert set(net.channels["#chat"].members) == members_after, name


def test_names_use_the_servers_prefixes_and_learn_idents_and_hosts() -> None:
    net = network()
    bot = bot_connection("PREFIX=(qaohv)~&@%+")
    said = inbound.from_channel(event(
        "namreply", SERVER, BOT, "=", "#chat", "~owner!o@h1 @op!op@h2 +voiced bridge!b@h3 alice[m]!a@h4",
    ), net, bot)
    assert unstamped(said.remote) == [
        RemoteMember(PORTAL, RemoteUserID("owner"), "join", sender_name="owner"),
        RemoteMember(PORTAL, RemoteUserID("op"), "join", sender_name="op"),
        RemotePower(PORTAL, RemoteUserID("op"), 50),
        RemoteMember(PORTAL, RemoteUserID("voiced"), "join", sender_name="voiced"),
        RemotePower(PORTAL, RemoteUserID("voiced"), 10),
    ]
    assert net.channels["#chat"].members == {"owner": "owner", "op": "op", "voiced": "voiced"}
    seen = net.known.get("op")
    assert seen is not None
    assert (seen.ident, seen.host) == ("op", "h2")


def test_the_bot_joining_asks_who_is_there_and_being_kicked_joins_again() -> None:
    net, bot = network(), bot_connection()
    joined = inbound.from_channel(event("join", "bridge!b@host", "#Chat"), net, bot)
    assert [line.text for line in joined.bot_sends] == ["WHO #Chat", "MODE #Chat"]
    assert joined.remote == []
    kicked = inbound.from_channel(event("kick", "op!o@host", "#chat", "bridge", "out"), net, bot)
    assert ([line.text for line in kicked.bot_sends], kicked.rejoined, kicked.remote) == (["JOIN #Chat"], ["#chat"], [])


def test_op_and_voice_become_power_for_ghosts_and_for_the_matrix_user_whose_connection_it_is() -> None:
    net, bot = network("bob"), bot_connection()
    said = inbound.from_channel(event("mode", "op!o@host", "#chat", "+o-v+bl", "bob", "alice[m]", "*!*@spam", "10"),
                                net, bot)
    assert unstamped(said.remote) == [
        RemotePower(PORTAL, RemoteUserID("bob"), 50),
        RemotePower(PORTAL, RemoteUserID("alice{m}"), 0, matrix_user=ALICE),  # folded by rfc1459
    ]
    # The ban's mask and the limit were taken as theirs; the bot's own op is no news.
    assert inbound.from_channel(event("mode", "op!o@host", "#chat", "+o", "bridge"), net, bot).remote == []


def test_a_mode_on_a_target_that_chantypes_does_not_call_a_channel_is_ignored() -> None:
    net = network("bob")
    net.portals.add("+chat")
    said = inbound.from_channel(event("mode", "op!o@host", "+chat", "+o", "bob"), net, bot_connection("CHANTYPES=#"))
    assert said.remote == []


def test_topics_from_others_and_at_join_are_bridged() -> None:
    net, bot = network(), bot_connection()
    set_now = inbound.from_channel(event("topic", "bob!b@host", "#chat", "news"), net, bot)
    assert unstamped(set_now.remote) == [RemoteChatInfo(PORTAL, topic="news", changed_by=RemoteUserID("bob"))]
    at_join = inbound.from_channel(event("currenttopic", SERVER, BOT, "#Chat", "old news"), net, bot)
    assert unstamped(at_join.remote) == [RemoteChatInfo(PORTAL, topic="old news")]


def test_a_private_message_opens_the_direct_chat_it_belongs_in() -> None:
    net = network()
    said = inbound.private_message(event("privnotice", "Bob!b@host", "alice[m]", "psst"), net, ALICE)
    assert said.direct_chat == inbound.DirectChat(ChatID("pm:bob:@alice:example.org"), RemoteUserID("bob"), ALICE,
                                                  "Bob")
    message = said.remote[0]
    assert isinstance(message, RemoteMessage)
    assert (message.chat_id, message.msgtype, message.text) == ("pm:bob:@alice:example.org", "m.notice", "psst")


def test_mode_changes_of_a_portal_reach_its_moderation_and_the_bridges_own_are_no_power_news() -> None:
    net, bot = network("bob"), bot_connection("CHANMODES=beI,k,l,imnst")
    said = inbound.from_channel(event("mode", "op!o@host", "#chat", "+bk", "*!*@spam", "key"), net, bot)
    assert [(m.chat, m.setter, [(c.adding, c.mode, c.param) for c in m.changes]) for m in said.modes] == [
        ("#chat", "op", [(True, "b", "*!*@spam"), (True, "k", "key")])]
    # Made by the bridge (a Matrix power level set as a mode): not turned back into power.
    mine = inbound.from_channel(event("mode", "bridge!b@host", "#chat", "+o", "alice[m]"), net, bot)
    assert mine.remote == []
    assert mine.modes[0].changes[0].mode == "o"
    listed = inbound.from_channel(event("channelmodeis", SERVER, BOT, "#Chat", "+kns", "sesame"), net, bot)
    assert listed.modes[0].complete
    assert [c.mode for c in listed.modes[0].changes] == ["k", "n", "s"]


def test_a_matrix_users_connection_joining_a_portal_is_told_for_their_power_and_is_no_ghost() -> None:
    net, bot = network(), bot_connection()
    said = inbound.from_channel(event("join", "alice[m]!a@host", "#chat"), net, bot)
    assert said.remote == []
    assert said.own_joins == [("#chat", ALICE)]
