"""The SQL store: the database handle, the tables, and the small stores built on them.

SQLite by default, PostgreSQL for production; the schema is migrated by Alembic when
:meth:`Database.open` runs. This package never imports :mod:`bridgekit.matrix` or the connector
contract: they depend on it, not the other way round.
"""

from bridgekit.store.engine import Database
from bridgekit.store.kv import KeyValueStore
from bridgekit.store.matrix_state import MatrixStateStore
from bridgekit.store.models import (
    AsTxn,
    Base,
    Ghost,
    InboxEvent,
    Job,
    KeyValue,
    MatrixUser,
    Message,
    OutboxItem,
    Portal,
    Reaction,
    RegisteredUser,
    RemoteSession,
    RoomMember,
    RoomState,
    SessionPortal,
    metadata,
)

__all__ = [
    "AsTxn",
    "Base",
    "Database",
    "Ghost",
    "InboxEvent",
    "Job",
    "KeyValue",
    "KeyValueStore",
    "MatrixStateStore",
    "MatrixUser",
    "Message",
    "OutboxItem",
    "Portal",
    "Reaction",
    "RegisteredUser",
    "RemoteSession",
    "RoomMember",
    "RoomState",
    "SessionPortal",
    "metadata",
]
