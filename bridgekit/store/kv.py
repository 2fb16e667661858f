"""Small JSON values per (network, key): settings a connector learns at run time and keeps.

For example the IRC connector records a network's CASEMAPPING at first connect. Not a place for
bulk data: each call is its own transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from bridgekit.store.engine import Database
from bridgekit.store.models import KeyValue
from bridgekit.store.upsert import upsert


class KeyValueStore:
    """Get, set and delete JSON values in the ``kv`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, network: str, key: str, default: Any = None) -> Any:
        """The value stored under (``network``, ``key``), or ``default`` when there is none."""
        query = select(KeyValue.value).where(KeyValue.network == network, KeyValue.key == key)
        async with self._db.read() as connection:
            row = (await connection.execute(query)).first()
        return default if row is None else row[0]

    async def set(self, network: str, key: str, value: Any) -> None:
        """Store ``value`` (anything ``json.dumps`` accepts), replacing what was there."""
        values = {"network": network, "key": key, "value": value}
        async with self._db.write() as connection:
            await connection.execute(upsert(self._db.dialect, KeyValue, ["network", "key"], values))

    async def delete(self, network: str, key: str) -> None:
        """Remove the value; nothing happens when there is none."""
        statement = delete(KeyValue).where(KeyValue.network == network, KeyValue.key == key)
        async with self._db.write() as connection:
            await connection.execute(statement)


__all__ = ["KeyValueStore"]
