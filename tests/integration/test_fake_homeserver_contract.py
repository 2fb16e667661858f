"""The FakeHomeserver of the fast tests answers like Synapse where a bridge would notice: each
scenario here runs against both, through bridgekit's own Matrix client, and must come out the
same. When Synapse and the fake disagree, the fake is wrong (fix it, or the fast tests lie)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from bridgekit.errors import MatrixForbidden, MatrixNotFound, MatrixUserInUse
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import Intent, MatrixClient
from bridgekit.matrix.paths import CLIENT_V3, path
from bridgekit.room_power import read_room_power
from bridgekit.testing import FakeHomeserver
from tests.support.memory import InMemoryState

pytestmark = pytest.mark.integration


@dataclass
class Homeserver:
    client: MatrixClient
    new_user_id: Callable[[], UserID]

    async def ghost(self) -> Intent:
        ghost = self.client.intent(self.new_user_id())
        await ghost.ensure_registered()
        return ghost


@pytest.fixture
async def fake_homeserver() -> AsyncIterator[Homeserver]:
    fake = FakeHomeserver()
    async with httpx.AsyncClient(transport=fake.transport) as http:
        yield Homeserver(fake.matrix_client(http, InMemoryState()),
                         lambda: UserID(f"@ghost_{secrets.token_hex(4)}:{fake.server_name}"))


@pytest.fixture(params=["fake", "synapse"])
def homeserver(request: pytest.FixtureRequest) -> Homeserver:
    """Each test runs twice: on the fake, and on the session's Synapse (its main slot)."""
    # A plain (not async) fixture: it may ask for async ones by name, outside the running loop.
    if request.param == "fake":
        fake: Homeserver = request.getfixturevalue("fake_homeserver")
        return fake
    slot = request.getfixturevalue("slot")
    client = request.getfixturevalue("client")
    return Homeserver(client, lambda: UserID(slot.ghost_user_id(f"c_{secrets.token_hex(4)}")))


async def private_room(homeserver: Homeserver) -> RoomID:
    return await homeserver.client.bot.create_room(name="contract", preset="private_chat")


async def test_a_resent_transaction_gives_back_the_first_event(homeserver: Homeserver) -> None:
    room = await private_room(homeserver)
    first = await homeserver.client.bot.send_text(room, "once", txn_id="contract-1")
    assert await homeserver.client.bot.send_text(room, "once", txn_id="contract-1") == first
    assert await homeserver.client.bot.send_text(room, "twice", txn_id="contract-2") != first


async def test_the_appservice_acts_only_as_users_it_registered(homeserver: Homeserver) -> None:
    stranger = homeserver.client.intent(homeserver.new_user_id())
    with pytest.raises(MatrixForbidden):
        await stranger.whoami()
    await stranger.ensure_registered()
    assert (await stranger.whoami()).user_id == stranger.user_id


async def test_registering_a_taken_name_is_user_in_use(homeserver: Homeserver) -> None:
    ghost = await homeserver.ghost()
    body = {"type": "m.login.application_service", "username": ghost.user_id[1:].split(":")[0],
            "inhibit_login": True}
    with pytest.raises(MatrixUserInUse):
        await homeserver.client.request_json("POST", path(CLIENT_V3, "register"), json=body)


async def test_a_private_room_takes_only_the_invited_and_only_members_speak(homeserver: Homeserver) -> None:
    room = await private_room(homeserver)
    ghost = await homeserver.ghost()
    with pytest.raises(MatrixForbidden):
        await ghost.join(room)
    with pytest.raises(MatrixForbidden):
        await ghost.send_text(room, "let me in")
    with pytest.raises(MatrixForbidden):
        await ghost.set_typing(room, True)
    await homeserver.client.bot.invite(room, ghost.user_id)
    await ghost.join(room)
    await ghost.send_text(room, "thanks")
    await ghost.set_typing(room, True)


async def test_a_member_without_power_may_not_moderate_or_change_the_room(homeserver: Homeserver) -> None:
    room = await private_room(homeserver)
    ghost = await homeserver.ghost()
    other = await homeserver.ghost()
    for member in (ghost, other):
        await homeserver.client.bot.invite(room, member.user_id)
        await member.join(room)
    said_by_bot = await homeserver.client.bot.send_text(room, "the rules")
    said_by_ghost = await ghost.send_text(room, "oops")
    with pytest.raises(MatrixForbidden):
        await ghost.kick(room, other.user_id)
    with pytest.raises(MatrixForbidden):
        await ghost.send_state(room, "m.room.name", "", {"name": "mine now"})
    with pytest.raises(MatrixForbidden):
        await ghost.redact(room, said_by_bot)
    await ghost.redact(room, said_by_ghost)  # its own: always allowed
    await homeserver.client.bot.kick(room, other.user_id)  # the creator has the power


async def test_state_the_room_lacks_is_not_found(homeserver: Homeserver) -> None:
    room = await private_room(homeserver)
    with pytest.raises(MatrixNotFound):
        await homeserver.client.bot.get_state(room, "m.bridge", "nothing-here")
    create = await homeserver.client.bot.get_state_event(room, "m.room.create")
    assert create["sender"] == homeserver.client.bot_user_id
    await homeserver.client.bot.send_state(room, "m.room.topic", "", {"topic": "set"})
    assert await homeserver.client.bot.get_state(room, "m.room.topic") == {"topic": "set"}


async def test_the_creator_is_the_rooms_admin_and_a_new_member_is_not(homeserver: Homeserver) -> None:
    room = await private_room(homeserver)
    ghost = await homeserver.ghost()
    await homeserver.client.bot.invite(room, ghost.user_id)
    await ghost.join(room)
    bot = homeserver.client.bot
    creator = await read_room_power(bot, room, homeserver.client.bot_user_id)
    member = await read_room_power(bot, room, ghost.user_id)
    assert (creator.allowed, creator.room_admin) == (True, True)
    assert (member.allowed, member.room_admin, member.level) == (False, False, 0)
