"""INSERT ... ON CONFLICT for both databases.

SQLite and PostgreSQL spell an upsert the same way, but SQLAlchemy builds it from each dialect's
own ``insert()``; these helpers pick the right one from :attr:`Database.dialect`.
They take a table or a mapped class.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.sql.dml import Insert

from bridgekit.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.orm import DeclarativeBase

def dialect_module(dialect: str) -> ModuleType:
    """``sqlalchemy.dialects.sqlite`` or ``.postgresql``, for its ``insert`` (with ON CONFLICT).

    Imported here, on first use, rather than at the top of each store module: the PostgreSQL
    dialect costs 2 MB resident, which a bridge on SQLite never needs (issue 16: idle memory)."""
    if dialect not in ("postgresql", "sqlite"):
        raise StoreError(f"no upsert for the {dialect!r} dialect (only sqlite and postgresql)")
    return importlib.import_module(f"sqlalchemy.dialects.{dialect}")


def _insert(dialect: str, table: Table | type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
    inserted: postgresql.Insert | sqlite.Insert = dialect_module(dialect).insert(table)
    return inserted


def insert_ignoring_conflicts(dialect: str, table: Table | type[DeclarativeBase], keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``; pass the values to ``execute``."""
    return _insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    dialect: str, table: Table | type[DeclarativeBase], keys: Sequence[str], values: Mapping[str, Any]
) -> Insert:
    """Insert ``values``, or update the row with the same ``keys`` to them."""
    statement = _insert(dialect, table).values(dict(values))
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


__all__ = ["dialect_module", "insert_ignoring_conflicts", "upsert"]
