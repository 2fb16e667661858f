"""The bridge's Matrix users (real people, not ghosts): their management rooms."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import matrix_user
from bridgekit.store.upsert import dialect_module

_USER: Table = matrix_user


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def management_room(self, user_id: str) -> str | None:
        async with self._db.read() as conn:
            return (
                await conn.execute(select(_USER.c.management_room).where(_USER.c.user_id == user_id))
            ).scalar()

    async def management_rooms(self) -> dict[str, str]:
        """Every management room: room ID -> its user (read once at start, kept in memory)."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(_USER.c.management_room, _USER.c.user_id).where(_USER.c.management_room.is_not(None))
                )
            ).all()
        return {room_id: user_id for room_id, user_id in rows}

    async def set_management_room(self, user_id: str, room_id: str | None) -> None:
        insert: Any = dialect_module(self._db.dialect).insert(_USER)
        statement = insert.values(user_id=user_id, management_room=room_id, created_at=now_ms())
        statement = statement.on_conflict_do_update(
            index_elements=[_USER.c.user_id], set_={"management_room": room_id}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)


__all__ = ["UserStore"]
