"""MatrixStateStore: what ensure_registered / ensure_joined remember, across restarts."""

from __future__ import annotations

from bridgekit.ids import RoomID, UserID
from bridgekit.store import Database, MatrixStateStore

ALICE = UserID("@_irc_alice:localhost")
BOB = UserID("@_irc_bob:localhost")
ROOM = RoomID("!room:localhost")
OTHER_ROOM = RoomID("!other:localhost")


async def test_registrations_and_joins_survive_a_restart(database_url: str) -> None:
    db = await Database.open(database_url)
    store = MatrixStateStore(db)
    await store.mark_registered(ALICE)
    await store.mark_joined(ROOM, ALICE)
    await db.close()

    db = await Database.open(database_url)
    try:
        store = MatrixStateStore(db)  # a new process: an empty cache
        assert await store.is_registered(ALICE)
        assert not await store.is_registered(BOB)
        assert await store.is_joined(ROOM, ALICE)
        assert not await store.is_joined(OTHER_ROOM, ALICE)
        assert not await store.is_joined(ROOM, BOB)
    finally:
        await db.close()


async def test_marking_twice_is_harmless(database: Database) -> None:
    store = MatrixStateStore(database)
    for _ in range(2):
        await store.mark_registered(ALICE)
        await store.mark_joined(ROOM, ALICE)
    assert await MatrixStateStore(database).is_registered(ALICE)
    assert await MatrixStateStore(database).is_joined(ROOM, ALICE)


async def test_a_forgotten_membership_is_not_joined_any_more(database: Database) -> None:
    store = MatrixStateStore(database)
    await store.mark_joined(ROOM, ALICE)
    assert await store.is_joined(ROOM, ALICE)  # now cached as well

    await store.forget_membership(ROOM, ALICE)
    await store.forget_membership(ROOM, BOB)  # never joined: nothing to forget

    assert not await store.is_joined(ROOM, ALICE)
    assert not await MatrixStateStore(database).is_joined(ROOM, ALICE)
    await store.mark_joined(ROOM, ALICE)
    assert await store.is_joined(ROOM, ALICE)


async def test_answers_stay_right_beyond_the_cache_size(database: Database) -> None:
    store = MatrixStateStore(database, cache_size=2)
    users = [UserID(f"@_irc_user{i}:localhost") for i in range(5)]
    for user in users:
        await store.mark_registered(user)
        await store.mark_joined(ROOM, user)
    for user in users:
        assert await store.is_registered(user)
        assert await store.is_joined(ROOM, user)
