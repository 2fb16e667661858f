"""Echoes: what the bridge sent to the network comes back from it (IRC's echo-message, a
network's own event stream), and what it posted on Matrix comes back from the homeserver. Neither
may be bridged a second time, whichever arrives first: the echo or the answer to the send."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridgekit.core.echoes import SendsInFlight
from bridgekit.events import RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID
from bridgekit.testing.waiting import eventually
from tests.core.network import FakeNetwork
from tests.core.wiring import ALICE, DOUBLE_PUPPET_MARKER, Middle, middle


async def test_the_networks_echo_of_a_relayed_message_is_not_posted_back(core: Middle) -> None:
    room = await core.portal()
    said = await core.say(room, ALICE, "hello network")
    [line] = core.network.seen
    # The network shows the relay bot's line to everyone, the bridge included.
    echo_id = await core.emit(RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("m1"),
                                            sender_id=RemoteUserID("relaybot"), text=line.what),
                              wait=True)
    assert echo_id == said.event_id  # the echo is the Matrix message it came from
    assert core.homeserver.messages(room) == []  # nothing posted: the message is in the room already


async def test_an_echo_that_arrives_before_the_send_returns_is_not_posted_back(tmp_path: Path) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=True, echo_before_returning=True)) as core:
        room = await core.portal()
        for text in ("one", "two", "three"):
            await core.say(room, ALICE, text)
        await core.delivered()
        assert core.network.lines() == [f"virtual:Alice[m]: {text}" for text in ("one", "two", "three")]
        assert core.homeserver.messages(room) == []


async def test_a_real_message_from_the_same_person_still_gets_through(tmp_path: Path) -> None:
    async with middle(tmp_path, FakeNetwork(virtual_users=True, echo_before_returning=True)) as core:
        room = await core.portal()
        await core.say(room, ALICE, "from matrix")
        await core.emit(RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("m9"),
                                      sender_id=RemoteUserID("Alice[m]"), text="from elsewhere"),
                        wait=True)
        assert core.homeserver.bodies(room) == ["from elsewhere"]


async def test_what_the_bridge_posted_as_a_matrix_user_is_not_routed_back(core: Middle) -> None:
    room = await core.portal()
    event = core.event(room, ALICE, {"msgtype": "m.text", "body": "said on net", DOUBLE_PUPPET_MARKER: "net"})
    assert await core.router.route(event)  # taken, and dropped
    assert core.network.seen == []


async def test_the_echo_check_waits_for_sends_in_flight_to_the_same_chat_only() -> None:
    in_flight = SendsInFlight(max_wait_seconds=5)
    async with in_flight.sending("net", "chat"):
        same_chat = asyncio.ensure_future(in_flight.settled("net", "chat"))
        await in_flight.settled("net", "other")  # another chat: at once
        for _ in range(5):  # give it turns of the loop to (wrongly) finish; not a wait for something
            await asyncio.sleep(0)
        assert not same_chat.done()
    await eventually(same_chat.done, what="the check to end once the send is mapped")
