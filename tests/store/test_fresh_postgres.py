"""A new PostgreSQL database's first start (bridgekit's migrations, then a connector's own tables)
runs no statement that fails: every failed statement is an ERROR line in the server's log, and an
admin setting up production must not find ``relation "alembic_version" does not exist`` there.

Two witnesses: SQLAlchemy's ``handle_error`` event, which sees every failed statement of the
process, even one caught and rolled back to a savepoint (always); and the server's own log, read
from the offset it had before the start (when this machine's log is readable: Debian's path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.store import Database
from tests.store.test_connector_tables import NotesConnector

SERVER_LOGS = sorted(Path("/var/log/postgresql").glob("postgresql-*-main.log"))


@pytest.fixture
def failed_statements() -> Iterator[list[str]]:
    failed: list[str] = []

    def record(context: Any) -> None:
        failed.append(f"{context.statement}: {context.original_exception}")

    event.listen(Engine, "handle_error", record)  # every engine made while it listens
    try:
        yield failed
    finally:
        event.remove(Engine, "handle_error", record)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_new_postgresql_database_logs_no_error_at_the_first_start(
    database_url: str, failed_statements: list[str]
) -> None:
    name = database_url.rsplit("/", 1)[-1]
    log = SERVER_LOGS[-1] if SERVER_LOGS and _readable(SERVER_LOGS[-1]) else None
    offset = log.stat().st_size if log is not None else 0

    database = await Database.open(database_url)
    try:
        await migrate_connector_tables(database, [NotesConnector()])  # alembic_version_notes, made by Alembic
        async with database.read() as connection:
            tables = set((await connection.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    finally:
        await database.close()
    assert {"alembic_version", "alembic_version_notes", "notes_note"} <= tables  # it did start

    assert failed_statements == []
    if log is not None:
        with log.open("rb") as file:
            file.seek(offset)
            ours = [line for line in file.read().decode(errors="replace").splitlines() if f"@{name} " in line]
        assert [line for line in ours if "ERROR" in line] == [], ours


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False
