"""The ON CONFLICT helpers, and the unique keys the inbox relies on."""

from __future__ import annotations

from sqlalchemy import func, select

from bridgekit.store import Database, InboxEvent, RoomMember
from bridgekit.store.upsert import insert_ignoring_conflicts, upsert


def _event(event_id: str | None, seq: int) -> dict[str, object]:
    return {
        "txn_id": "txn1", "seq": seq, "event_id": event_id, "room_id": "!r:localhost",
        "kind": "pdu" if event_id else "ephemeral", "queue_key": "!r:localhost", "payload": "{}",
        "received_at": 1,
    }  # fmt: skip


async def test_an_event_id_is_stored_once_and_missing_ids_never_collide(database: Database) -> None:
    statement = insert_ignoring_conflicts(database.dialect, InboxEvent, ["event_id"])
    async with database.write() as connection:
        await connection.execute(statement, [_event("$a", 0), _event(None, 1), _event(None, 2)])
    async with database.write() as connection:
        await connection.execute(statement, [_event("$a", 0), _event("$b", 1), _event(None, 2)])

    async with database.read() as connection:
        rows = (await connection.execute(select(InboxEvent).order_by(InboxEvent.id))).all()
    assert [row.event_id for row in rows] == ["$a", None, None, "$b", None]
    assert {row.state for row in rows} == {"accepted"}
    assert {row.attempts for row in rows} == {0}


async def test_upsert_inserts_then_updates(database: Database) -> None:
    key = {"room_id": "!r:localhost", "user_id": "@a:localhost"}
    for membership in ("invite", "join"):
        statement = upsert(
            database.dialect, RoomMember, ["room_id", "user_id"], {**key, "membership": membership}
        )
        async with database.write() as connection:
            await connection.execute(statement)
    async with database.read() as connection:
        assert (await connection.execute(select(func.count()).select_from(RoomMember))).scalar_one() == 1
        assert (await connection.execute(select(RoomMember.membership))).scalar_one() == "join"
