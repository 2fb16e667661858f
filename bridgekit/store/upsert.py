"""INSERT ... ON CONFLICT for both databases.

SQLite and PostgreSQL spell an upsert the same way, but SQLAlchemy builds it from each dialect's
own ``insert()``; these helpers pick the right one from :attr:`Database.dialect`.
They take a table or a mapped class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert

from bridgekit.errors import StoreError

TableLike = Table | type[DeclarativeBase]


def _insert(dialect: str, table: TableLike) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"no upsert for the {dialect!r} dialect (only sqlite and postgresql)")


def insert_ignoring_conflicts(dialect: str, table: TableLike, keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``; pass the values to ``execute``."""
    return _insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    dialect: str, table: TableLike, keys: Sequence[str], values: Mapping[str, Any]
) -> Insert:
    """Insert ``values``, or update the row with the same ``keys`` to them."""
    statement = _insert(dialect, table).values(dict(values))
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


__all__ = ["insert_ignoring_conflicts", "upsert"]
