"""The stores of bridging itself, opened together: portals, the message map, ghost profiles and
the outbox toward Matrix.

They are separate stores, but one set of them serves the whole bridge: the portal memory must be
the one that link and unlink forget, and the message map rows and the outbox's "sent" marks share
one write-behind, so a send's bookkeeping is committed in one transaction.
"""

from __future__ import annotations

from bridgekit.store.engine import Database
from bridgekit.store.ghosts import GhostStore
from bridgekit.store.message_map import MessageMap
from bridgekit.store.outbox import OutboxStore
from bridgekit.store.portals import PortalStore
from bridgekit.store.write_behind import WriteBehind


class BridgeStores:
    def __init__(self, db: Database) -> None:
        self.write_behind = WriteBehind(db)
        self.portals = PortalStore(db)
        self.messages = MessageMap(db, self.write_behind)
        self.ghosts = GhostStore(db)
        self.outbox = OutboxStore(db, self.portals, self.write_behind)

    async def flush(self) -> None:
        """Commit the bookkeeping of sends that is still written behind (at shutdown)."""
        await self.write_behind.flush()


__all__ = ["BridgeStores"]
