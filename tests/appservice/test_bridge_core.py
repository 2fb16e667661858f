"""Routing in the core: echoes of the bridge's own users, and its memory of their memberships."""

from __future__ import annotations

import json

import pytest

from bridgekit.core.bridge import Bridge, OwnUsers
from bridgekit.core.inbox import Inbox
from bridgekit.ids import RoomID, UserID
from bridgekit.store import Database, MatrixStateStore
from bridgekit.store.inbox import InboxStore
from tests.appservice.harness import RecordingConnector, auth, message, running_appservice

pytestmark = pytest.mark.integration

ROOM = RoomID("!room:localhost")
GHOST = UserID("@_bk_ghost:localhost")


async def test_messages_from_our_own_bot_and_ghosts_are_not_bridged_back(database: Database) -> None:
    async with running_appservice(database) as appservice:
        body = {"events": [
            message("$from-ghost", sender=GHOST),
            message("$from-bot", sender="@_bk_bot:localhost"),
            message("$from-human"),
        ]}
        response = await appservice.http.put("/_matrix/app/v1/transactions/echo", json=body, headers=auth())
        assert response.status_code == 200
        await appservice.inbox.dispatcher.wait_idle(10)
        assert [e.event_id for e in appservice.connector.events] == ["$from-human"]


async def test_a_ghost_kicked_by_someone_else_is_forgotten_as_joined(database: Database) -> None:
    memory = MatrixStateStore(database)
    await memory.mark_joined(ROOM, GHOST)
    kick = message(
        "$kick", type="m.room.member", state_key=GHOST, content={"membership": "leave"},
        sender="@admin:localhost",
    )
    async with running_appservice(database) as appservice:
        response = await appservice.http.put(
            "/_matrix/app/v1/transactions/kick", json={"events": [kick]}, headers=auth()
        )
        assert response.status_code == 200
        await appservice.inbox.dispatcher.wait_idle(10)
    # A fresh store (no cache) reads what the database says: the next send will re-join first.
    assert not await MatrixStateStore(database).is_joined(ROOM, GHOST)
    rejoin = message("$join", type="m.room.member", state_key=GHOST, content={"membership": "join"}, sender=GHOST)
    async with running_appservice(database) as appservice:
        await appservice.http.put("/_matrix/app/v1/transactions/join", json={"events": [rejoin]}, headers=auth())
        await appservice.inbox.dispatcher.wait_idle(10)
    assert await MatrixStateStore(database).is_joined(ROOM, GHOST)


async def test_a_message_given_up_on_is_reported_in_its_room(database: Database) -> None:
    told: list[tuple[str, str, str, str]] = []

    async def notify(room_id: RoomID, text: str, key: str, mention: UserID) -> None:
        told.append((room_id, text, key, mention))

    async def register(_user_id: UserID) -> None:
        pass

    connector = RecordingConnector(fail_times={"$lost": 99})
    bridge = Bridge(
        [connector], OwnUsers("@_bk_bot:localhost", ["_bk_"], "localhost"), register,
        MatrixStateStore(database), notify=notify,
    )
    bridge.connectors_started()
    inbox = Inbox(InboxStore(database), bridge.handle, max_attempts=2, on_given_up=bridge.report_given_up)
    await inbox.start()
    try:
        await inbox.accept("1", json.dumps({"events": [message("$lost")]}).encode())
        assert await inbox.dispatcher.wait_idle(15)
    finally:
        await inbox.stop()
    assert len(told) == 1
    room_id, text, key, mention = told[0]
    assert (room_id, mention) == ("!room:localhost", "@alice:localhost")
    assert "could not be delivered" in text
    assert key == "given-up:$lost"  # a replay cannot post the notice twice


async def test_echoes_of_the_bridges_own_messages_are_acknowledged_without_being_stored(database: Database) -> None:
    own = OwnUsers("@_bk_bot:localhost", ["_bk_"], "localhost")

    async def register(_user_id: UserID) -> None:
        pass

    connector = RecordingConnector()
    bridge = Bridge([connector], own, register, MatrixStateStore(database))
    bridge.connectors_started()
    inbox = Inbox(InboxStore(database), bridge.handle, ignore=bridge.needs_no_handling)
    await inbox.start()
    try:
        echoes = {"events": [message("$echo1", sender=GHOST), message("$echo2", sender="@_bk_bot:localhost")]}
        assert (await inbox.accept("only-echoes", json.dumps(echoes).encode())).stored == 0
        joined = message("$ghost-join", type="m.room.member", state_key=GHOST, content={"membership": "join"},
                         sender=GHOST)
        mixed = {"events": [message("$echo3", sender=GHOST), joined, message("$human")]}
        assert (await inbox.accept("mixed", json.dumps(mixed).encode())).stored == 2  # membership is kept
        assert await inbox.dispatcher.wait_idle(10)
    finally:
        await inbox.stop()
    assert [e.event_id for e in connector.events] == ["$ghost-join", "$human"]
    assert await MatrixStateStore(database).is_joined(ROOM, GHOST)
