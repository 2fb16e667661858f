"""What the bridge knows about Matrix users it registered and rooms they joined.

The Matrix client's ``ensure_registered`` and ``ensure_joined`` ask here before calling the
homeserver, so a restart does not re-register every ghost or re-join every room (a re-join can
wipe a ghost's per-room profile). SQL is the truth; a bounded cache of positive answers sits in
front of it because the same few ghosts and rooms are asked about over and over. Negative answers
are not cached: "not known" must always be checked again.

All membership changes of users this store answers for must go through it, or the cache would
say "joined" after someone else's code deleted the row.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy import delete, select

from bridgekit.ids import RoomID, UserID
from bridgekit.store.engine import Database
from bridgekit.store.tables import registered_user as _REGISTERED
from bridgekit.store.tables import room_member as _MEMBER
from bridgekit.store.upsert import insert_ignoring_conflicts, upsert

_Key = TypeVar("_Key", bound=Hashable)

DEFAULT_CACHE_SIZE = 10_000


class _BoundedSet(Generic[_Key]):
    """A set that forgets its least recently used member beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._members: OrderedDict[_Key, None] = OrderedDict()

    def __contains__(self, key: _Key) -> bool:
        if key not in self._members:
            return False
        self._members.move_to_end(key)
        return True

    def __len__(self) -> int:
        return len(self._members)

    def add(self, key: _Key) -> None:
        self._members[key] = None
        self._members.move_to_end(key)
        while len(self._members) > self._capacity:
            self._members.popitem(last=False)

    def discard(self, key: _Key) -> None:
        self._members.pop(key, None)


class MatrixStateStore:
    """Registrations and joins, persisted in ``registered_user`` and ``room_member``."""

    def __init__(self, db: Database, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._db = db
        self._registered: _BoundedSet[UserID] = _BoundedSet(cache_size)
        self._joined: _BoundedSet[tuple[RoomID, UserID]] = _BoundedSet(cache_size)

    async def is_registered(self, user_id: UserID) -> bool:
        if user_id in self._registered:
            return True
        query = select(_REGISTERED.c.user_id).where(_REGISTERED.c.user_id == user_id)
        async with self._db.read() as connection:
            found = (await connection.execute(query)).first() is not None
        if found:
            self._registered.add(user_id)
        return found

    async def mark_registered(self, user_id: UserID) -> None:
        statement = insert_ignoring_conflicts(self._db.dialect, _REGISTERED, ["user_id"])
        async with self._db.write() as connection:
            await connection.execute(statement, {"user_id": user_id, "registered_at": _now_ms()})
        self._registered.add(user_id)

    async def is_joined(self, room_id: RoomID, user_id: UserID) -> bool:
        if (room_id, user_id) in self._joined:
            return True
        query = select(_MEMBER.c.membership).where(
            _MEMBER.c.room_id == room_id, _MEMBER.c.user_id == user_id
        )
        async with self._db.read() as connection:
            joined = (await connection.execute(query)).scalar() == "join"
        if joined:
            self._joined.add((room_id, user_id))
        return joined

    async def mark_joined(self, room_id: RoomID, user_id: UserID) -> None:
        values = {"room_id": room_id, "user_id": user_id, "membership": "join"}
        statement = upsert(self._db.dialect, _MEMBER, ["room_id", "user_id"], values)
        async with self._db.write() as connection:
            await connection.execute(statement)
        self._joined.add((room_id, user_id))

    async def forget_membership(self, room_id: RoomID, user_id: UserID) -> None:
        """Mark ``user_id`` as not joined to ``room_id`` (left, kicked, or simply unknown)."""
        # Dropped from the cache first: a concurrent is_joined must not answer from it once
        # the row is gone.
        self._joined.discard((room_id, user_id))
        statement = delete(_MEMBER).where(
            _MEMBER.c.room_id == room_id, _MEMBER.c.user_id == user_id
        )
        async with self._db.write() as connection:
            await connection.execute(statement)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = ["DEFAULT_CACHE_SIZE", "MatrixStateStore"]
