"""A network that approves links (``LinkApprover``): a room admin who is not a bridge admin asks
to link, the command answers at once, and the room is linked only when the network approves; a
refusal or a failure is told in the room; bridge admins link at once, unasked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridgekit import LinkApprover
from bridgekit.ids import ChatID, RoomID, UserID
from bridgekit.testing.waiting import eventually
from tests.core.network import FakeNetwork
from tests.core.wiring import ADMIN, ALICE, Middle, middle


@dataclass
class ApprovingNetwork(FakeNetwork):
    """Asks its people; each answer is put in ``answers`` by the test."""

    answers: asyncio.Queue[bool | str] = field(default_factory=asyncio.Queue)
    asked: list[tuple[UserID, ChatID, RoomID]] = field(default_factory=list)

    async def approve_link(self, user_id: UserID, chat_id: ChatID, room_id: RoomID) -> bool | str:
        self.asked.append((user_id, chat_id, room_id))
        answer = await self.answers.get()
        if answer == "crash":
            raise RuntimeError("the network fell over")
        return answer


@pytest.fixture
async def approving(tmp_path: Path) -> AsyncIterator[tuple[Middle, ApprovingNetwork]]:
    network = ApprovingNetwork()
    async with middle(tmp_path, network) as wired:
        yield wired, network


def alices_room(core: Middle) -> RoomID:
    """A room alice is an admin of (she is a bridge 'user', not a bridge admin), with the bot."""
    hs = core.homeserver
    return RoomID(hs.add_room(ALICE, members=(hs.bot_user_id,), power={ALICE: 100, hs.bot_user_id: 100}))


async def link(core: Middle, room: RoomID, sender: UserID, chat: str) -> str:
    event = core.event(room, sender, {"msgtype": "m.text", "body": f"!bk link net {chat}"})
    assert await core.management.handle(event)
    return core.homeserver.bodies(room, sender=core.homeserver.bot_user_id)[-1]


async def test_a_room_admins_link_waits_for_the_networks_approval(
    approving: tuple[Middle, ApprovingNetwork],
) -> None:
    core, network = approving
    assert isinstance(network, LinkApprover)
    room = alices_room(core)
    answer = await link(core, room, ALICE, "Chat")
    assert answer == ("Linking this room to chat on net needs the approval of net's side: asked. "
                      "The answer will be posted here.")
    await eventually(lambda: network.asked == [(ALICE, "chat", room)], what="the network was asked")
    assert await core.chat_of(room) is None  # nothing is linked before the answer
    assert (await link(core, room, ALICE, "chat")).endswith("is waiting for approval already.")

    network.answers.put_nowait(True)
    await eventually(lambda: core.chat_of(room), what="the room linked after the approval")
    bodies = core.homeserver.bodies(room, sender=core.homeserver.bot_user_id)
    assert bodies[-1] == f"{ALICE}: approved. This room is now the portal of chat on net."
    assert len(network.asked) == 1


@pytest.mark.parametrize(("answer", "told"), [
    ("no operator of #chat answered within 5 minutes", "no operator of #chat answered within 5 minutes"),
    (False, "refused"),
    ("crash", "the approval failed (the bridge's log says why)"),
])
async def test_a_refused_link_is_told_in_the_room_and_links_nothing(
    approving: tuple[Middle, ApprovingNetwork], answer: bool | str, told: str,
) -> None:
    core, network = approving
    room = alices_room(core)
    await link(core, room, ALICE, "chat")
    network.answers.put_nowait(answer)
    expected = f"{ALICE}: linking this room to chat on net was not approved: {told}."
    await eventually(lambda: expected in core.homeserver.bodies(room, sender=core.homeserver.bot_user_id),
                     what="the refusal in the room")
    assert await core.chat_of(room) is None


async def test_a_bridge_admin_links_at_once_without_asking(approving: tuple[Middle, ApprovingNetwork]) -> None:
    core, network = approving
    room = RoomID(core.homeserver.add_room(ADMIN, members=(core.homeserver.bot_user_id,),
                                           power={core.homeserver.bot_user_id: 100}))
    assert await link(core, room, ADMIN, "chat") == "This room is now the portal of chat on net."
    assert network.asked == []
    assert await core.chat_of(room) == "chat"
