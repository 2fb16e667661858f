"""Small JSON values per (network, key): settings a connector learns at run time and keeps.

For example the IRC connector records a network's CASEMAPPING at first connect, and keeps the
full text of a long message it shortened for IRC for a while (a value with a time to live).
Not a place for bulk data: each call is its own transaction.

Expired values read as missing at once; their rows are deleted by a ``set`` at most once per
``PURGE_INTERVAL_MS`` (one indexed DELETE), so a bridge that stores them also clears them out
without a task of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import kv as _KV
from bridgekit.store.upsert import upsert

PURGE_INTERVAL_MS = 3_600_000


class KeyValueStore:
    """Get, set and delete JSON values in the ``kv`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_purge_ms = 0

    async def get(self, network: str, key: str, default: Any = None) -> Any:
        """The value stored under (``network``, ``key``), or ``default`` when there is none
        (or it has expired)."""
        query = select(_KV.c.value).where(
            _KV.c.network == network, _KV.c.key == key,
            or_(_KV.c.expires_at.is_(None), _KV.c.expires_at > now_ms()),
        )
        async with self._db.read() as connection:
            row = (await connection.execute(query)).first()
        return default if row is None else row[0]

    async def set(self, network: str, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        """Store ``value`` (anything ``json.dumps`` accepts), replacing what was there; with
        ``ttl_seconds`` it is gone after that long."""
        now = now_ms()
        expires_at = None if ttl_seconds is None else now + int(ttl_seconds * 1000)
        values = {"network": network, "key": key, "value": value, "expires_at": expires_at}
        async with self._db.write() as connection:
            await connection.execute(upsert(self._db.dialect, _KV, ["network", "key"], values))
            if expires_at is not None and now >= self._next_purge_ms:
                self._next_purge_ms = now + PURGE_INTERVAL_MS
                await connection.execute(delete(_KV).where(_KV.c.expires_at <= now))

    async def delete(self, network: str, key: str) -> None:
        """Remove the value; nothing happens when there is none."""
        statement = delete(_KV).where(_KV.c.network == network, _KV.c.key == key)
        async with self._db.write() as connection:
            await connection.execute(statement)


__all__ = ["PURGE_INTERVAL_MS", "KeyValueStore"]
