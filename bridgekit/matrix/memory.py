"""What the Matrix side must remember across restarts: who is registered, who has joined where.

The client asks this memory before it registers a user or joins a room, and tells it what
changed. It is a Protocol so the Matrix package never imports the store: the SQL implementation
lives in ``bridgekit.store`` and is handed in by the composition root; tests use a dict.
"""

from __future__ import annotations

from typing import Protocol

from bridgekit.ids import RoomID, UserID


class MatrixStateMemory(Protocol):
    """Durable knowledge of registrations and memberships, as the bridge last saw them.

    It may be stale (a user kicked by someone else is still "joined" here until an event says
    otherwise); the intents only use it to skip requests, never to refuse one.
    """

    async def is_registered(self, user_id: UserID) -> bool:
        """Whether ``user_id`` is known to exist on the homeserver."""
        ...

    async def mark_registered(self, user_id: UserID) -> None:
        """Remember that ``user_id`` exists (registered now, or found already in use)."""
        ...

    async def is_joined(self, room_id: RoomID, user_id: UserID) -> bool:
        """Whether ``user_id`` is known to be joined to ``room_id``."""
        ...

    async def mark_joined(self, room_id: RoomID, user_id: UserID) -> None:
        """Remember that ``user_id`` is joined to ``room_id``."""
        ...

    async def forget_membership(self, room_id: RoomID, user_id: UserID) -> None:
        """Forget ``user_id``'s membership of ``room_id`` (it left, was kicked or banned)."""
        ...


__all__ = ["MatrixStateMemory"]
