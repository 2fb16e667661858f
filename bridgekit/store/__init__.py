"""The SQL store: the database handle, the tables, and the small stores built on them.

SQLite by default, PostgreSQL for production; the schema is migrated by Alembic when
:meth:`Database.open` runs. This package never imports :mod:`bridgekit.matrix` or the connector
contract: they depend on it, not the other way round.

The ORM classes (``Portal``, ``Ghost``...) are imported from :mod:`bridgekit.store.models` on first
use of their names here: the running bridge uses the Core tables (``tables.py``) only, and the ORM
would cost it 6-7 MB resident.
"""

from typing import TYPE_CHECKING, Any

from bridgekit.store.engine import Database
from bridgekit.store.kv import KeyValueStore
from bridgekit.store.matrix_state import MatrixStateStore
from bridgekit.store.tables import metadata

if TYPE_CHECKING:
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
    )

_ORM_NAMES = frozenset({
    "AsTxn", "Base", "Ghost", "InboxEvent", "Job", "KeyValue", "MatrixUser", "Message", "OutboxItem", "Portal",
    "Reaction", "RegisteredUser", "RemoteSession", "RoomMember", "RoomState", "SessionPortal",
})


def __getattr__(name: str) -> Any:
    if name in _ORM_NAMES:
        from bridgekit.store import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
