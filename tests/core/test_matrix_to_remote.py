"""Matrix -> remote: a message in a portal goes out as the sender's puppet, else their virtual
identity, else through the relay, else it is refused with a notice saying how to get bridged.
Edits, reactions and deletions follow the same identity; typing and read receipts reach the
network only for people with an identity of their own there; presence is not routed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridgekit.events import RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID, RoomID, UserID
from tests.core.network import FakeNetwork
from tests.core.wiring import ADMIN, ALICE, EVE, RITA, Middle, middle


@pytest.mark.parametrize(
    ("virtual_users", "relay", "sender", "logged_in", "seen"),
    [
        (True, True, ALICE, True, "puppet:alice: hello"),  # her own account wins over everything
        (True, True, ALICE, False, "virtual:Alice[m]: hello"),
        (True, True, RITA, False, "bot:relaybot: <Rita> hello"),  # 'relay' level: never a virtual identity
        (False, True, ALICE, False, "bot:relaybot: <Alice> hello"),
        (False, False, ALICE, True, "puppet:alice: hello"),  # the relay being off does not matter to a puppet
    ],
)
async def test_the_routing_rule_picks_who_says_it_on_the_network(
    tmp_path: Path, virtual_users: bool, relay: bool, sender: UserID, logged_in: bool, seen: str,
) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=virtual_users)) as core:
        room = await core.portal(relay=relay)
        if logged_in:
            await core.login(sender)
        await core.say(room, sender, "hello")
        assert core.network.lines() == [seen]
        assert core.homeserver.messages(room, sender=core.homeserver.bot_user_id) == []  # no notice


@pytest.mark.parametrize(
    ("sender", "why"),
    [
        (ALICE, "you are not logged in and relaying is off in this room"),
        (RITA, "relaying is off in this room and your permission level ('relay') cannot log in"),
        (EVE, "this bridge's permissions do not include you"),
    ],
)
async def test_a_message_nobody_may_carry_is_refused_with_a_notice_to_its_sender(
    core: Middle, sender: UserID, why: str,
) -> None:
    room = await core.portal(relay=False, members=(ADMIN, ALICE, RITA, EVE))
    said = await core.say(room, sender, "anyone there?")
    assert core.network.lines() == []
    [notice] = core.homeserver.messages(room, sender=core.homeserver.bot_user_id)
    assert why in (notice.body or "")
    assert notice.content["msgtype"] == "m.notice"
    assert notice.content["m.mentions"] == {"user_ids": [sender]}
    # Handled again (a replay after a crash), the refusal is not said twice.
    await core.router.route(said)
    assert len(core.homeserver.messages(room, sender=core.homeserver.bot_user_id)) == 1


async def test_the_relay_uses_the_name_the_sender_has_in_the_room(core: Middle) -> None:
    room = await core.portal()
    core.homeserver.add_user(RITA, displayname="Rita (work)")
    await core.router.route(core.event(room, RITA, {"membership": "join", "displayname": "Rita the Red"},
                                       event_type="m.room.member", state_key=RITA))
    await core.say(room, RITA, "hi")
    assert core.network.lines() == ["bot:relaybot: <Rita the Red> hi"]


async def test_edits_reactions_and_deletions_follow_the_message_to_the_network(tmp_path: Path) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=True)) as core:
        room = await core.portal()
        said = await core.say(room, ALICE, "teh plan")
        edit = {"msgtype": "m.text", "body": "* the plan", "m.new_content": {"msgtype": "m.text", "body": "the plan"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": said.event_id}}
        await core.router.route(core.event(room, RITA, edit))  # not hers to edit: dropped
        await core.router.route(core.event(room, ALICE, edit))
        await core.router.route(core.event(room, ALICE, {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": said.event_id, "key": "🎉"}},
            event_type="m.reaction"))
        await core.router.route(core.event(room, ALICE, {}, event_type="m.room.redaction", redacts=said.event_id))
        assert core.network.lines() == [
            "virtual:Alice[m]: teh plan",
            "virtual:Alice[m]: (edit of m1) the plan",
            "virtual:Alice[m]: (reacted 🎉 to m1)",
            "virtual:Alice[m]: (deleted m1)",
        ]


async def test_typing_reaches_the_network_only_for_people_with_their_own_identity(core: Middle) -> None:
    room = await core.portal()
    await core.login(ALICE)
    await core.ephemeral("m.typing", room, {"user_ids": [ALICE, RITA]})
    await core.ephemeral("m.typing", room, {"user_ids": [ALICE, RITA]})  # no change: nothing new
    await core.ephemeral("m.typing", room, {"user_ids": [RITA]})
    # Rita has only the relay: the relay bot never shows anyone typing.
    assert core.network.lines() == ["puppet:alice: (typing)", "puppet:alice: (stopped typing)"]


async def test_typing_never_opens_a_virtual_identity(tmp_path: Path) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=True)) as core:
        room = await core.portal()
        await core.ephemeral("m.typing", room, {"user_ids": [ALICE]})
        assert core.network.lines() == []
        await core.say(room, ALICE, "now I exist there")
        await core.ephemeral("m.typing", room, {"user_ids": []})
        await core.ephemeral("m.typing", room, {"user_ids": [ALICE]})
        assert core.network.lines() == [
            "virtual:Alice[m]: now I exist there", "virtual:Alice[m]: (stopped typing)", "virtual:Alice[m]: (typing)",
        ]


async def test_a_read_receipt_marks_the_networks_message_read(core: Middle) -> None:
    room = await core.portal()
    await core.login(ALICE)
    from_network = await core.emit(RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("r7"),
                                                 sender_id=RemoteUserID("bob"), text="hi"),
                                   wait=True)
    assert from_network is not None
    from_matrix = await core.say(room, ALICE, "hello bob")
    read = {"m.read": {ALICE: {"ts": 1}, RITA: {"ts": 1}}}
    await core.ephemeral("m.receipt", room, {from_network: read})
    await core.ephemeral("m.receipt", room, {from_matrix.event_id: read})  # not the network's: nothing to mark
    assert core.network.lines() == ["puppet:alice: hello bob", "puppet:alice: (read up to r7)"]


async def test_presence_and_ephemeral_events_outside_portals_reach_no_session(core: Middle) -> None:
    room = await core.portal()
    await core.login(ALICE)
    elsewhere = RoomID(core.homeserver.add_room(ADMIN, members=(ALICE,)))
    await core.ephemeral("m.presence", None, {"presence": "online", "currently_active": True}, sender=ALICE)
    await core.ephemeral("m.typing", elsewhere, {"user_ids": [ALICE]})  # not a portal
    await core.ephemeral("m.typing", room, {"user_ids": [ALICE]})
    assert core.network.lines() == ["puppet:alice: (typing)"]


async def test_a_user_the_network_has_no_room_for_is_relayed_with_the_prefix_and_told_once(tmp_path: Path) -> None:
    """A connector that raises UseRelay (a connection limit reached) gets the sender relayed as
    ``<name> text``, never their words under the bot's name alone; they are told once, privately."""
    async with middle(tmp_path, FakeNetwork(virtual_users=True, full="net has no room for more connections.")) as core:
        room = await core.portal(relay=True)
        await core.say(room, ALICE, "hello")
        await core.say(room, ALICE, "still me")
        assert core.network.lines() == ["bot:relaybot: <Alice> hello", "bot:relaybot: <Alice> still me"]
        [(user, text)] = core.told
        assert user == ALICE
        assert "net has no room for more connections." in text
        assert "relay" in text
        # Room again: her own identity; full once more later, she is told again (a new episode).
        core.network.full = None
        await core.say(room, ALICE, "my own voice")
        assert core.network.lines()[-1] == "virtual:Alice[m]: my own voice"
        assert len(core.told) == 1


async def test_a_user_the_network_has_no_room_for_is_refused_where_the_relay_is_off(tmp_path: Path) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=True, full="net is full.")) as core:
        room = await core.portal(relay=False)
        await core.say(room, ALICE, "hello")
        assert core.network.lines() == []
        [notice] = core.homeserver.messages(room, sender=core.homeserver.bot_user_id)
        assert "relaying is off in this room" in (notice.body or "")
        [(user, text)] = core.told
        assert user == ALICE
        assert "net is full." in text
