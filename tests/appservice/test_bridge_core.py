"""Routing in the core: echoes of the bridge's own users, and its memory of their memberships."""

from __future__ import annotations

import pytest

from bridgekit.ids import RoomID, UserID
from bridgekit.store import Database, MatrixStateStore
from tests.appservice.harness import auth, message, running_appservice

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
