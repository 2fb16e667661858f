"""Reading another SQLite file, read-only: what a connector needs to import the database an
older version of it kept on its own (its rows move into the bridge's database once).

Connectors never open database files themselves (the contract's ``ConnectorDatabase``); this
is the one exception, and it cannot write: the file is opened with SQLite's ``mode=ro``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


def sqlite_path(url: str) -> Path | None:
    """The file an SQLAlchemy SQLite URL names (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class SQLiteFileReader:
    """Queries on one read-only SQLite file (:func:`read_sqlite_file`)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def tables(self) -> set[str]:
        result = await self._connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        return {str(row[0]) for row in result}

    async def rows(self, query: str, **parameters: Any) -> list[Mapping[str, Any]]:
        """The rows of one SELECT, as mappings of column name to value."""
        result = await self._connection.execute(text(query), parameters)
        return [dict(row) for row in result.mappings()]


def _readonly_uri(path: Path) -> str:
    return f"file:{quote(os.path.abspath(path))}?mode=ro&uri=true"


@contextlib.asynccontextmanager
async def read_sqlite_file(path: Path) -> AsyncIterator[SQLiteFileReader]:
    """``async with read_sqlite_file(path) as old``: the file opened read-only, in one snapshot."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{_readonly_uri(path)}")
    try:
        async with engine.connect() as connection, connection.begin():
            yield SQLiteFileReader(connection)
    finally:
        await engine.dispose()


__all__ = ["SQLiteFileReader", "read_sqlite_file", "sqlite_path"]
