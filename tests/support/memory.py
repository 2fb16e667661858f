"""An in-memory MatrixStateMemory for tests of the Matrix client (the real one is SQL:
``bridgekit.store.MatrixStateStore``). Lost on restart, so never for bridges."""

from __future__ import annotations

from bridgekit.ids import RoomID, UserID


class InMemoryState:
    def __init__(self) -> None:
        self.registered: set[UserID] = set()
        self.joined: set[tuple[RoomID, UserID]] = set()

    async def is_registered(self, user_id: UserID) -> bool:
        return user_id in self.registered

    async def mark_registered(self, user_id: UserID) -> None:
        self.registered.add(user_id)

    async def is_joined(self, room_id: RoomID, user_id: UserID) -> bool:
        return (room_id, user_id) in self.joined

    async def mark_joined(self, room_id: RoomID, user_id: UserID) -> None:
        self.joined.add((room_id, user_id))

    async def forget_membership(self, room_id: RoomID, user_id: UserID) -> None:
        self.joined.discard((room_id, user_id))
