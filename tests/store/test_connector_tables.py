"""Connector-owned tables (``ConnectorTables``): a test connector's two migrations applied at
start-up in the bridge's database, on SQLite and PostgreSQL, after bridgekit's own and beside
them; a second start changes nothing; an upgrade keeps the rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Connection, Engine

from bridgekit import ConnectorTables
from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.errors import ConfigError, StoreError
from bridgekit.store import Database
from bridgekit.store.connector_migrate import upgrade_connector_schema
from bridgekit.store.migrate import HEAD_REVISION
from tests.support.notes_tables import NOTES_TABLES, add_note, metadata, note


class NotesConnector:
    tables = NOTES_TABLES

    def __init__(self, name: str = "notes") -> None:
        self.name = name

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def revisions(connection: Connection) -> tuple[str, str]:
    """(bridgekit's revision, the notes connector's)."""
    core = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    notes = connection.exec_driver_sql("SELECT version_num FROM alembic_version_notes").scalar_one()
    return str(core), str(notes)


def notes_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [diff for diff in compare_metadata(context, metadata) if "notes_" in repr(diff)]


async def test_a_connectors_migrations_run_after_bridgekits_and_build_its_models(database: Database) -> None:
    reached = await migrate_connector_tables(database, [NotesConnector()])
    assert reached == {"notes": "0002"}
    async with database.read() as connection:
        # Each history in its own version table: bridgekit's is untouched.
        assert await connection.run_sync(revisions) == (HEAD_REVISION, "0002")
        assert await connection.run_sync(notes_differences) == []
    # The connector reads and writes through the bridge's own handle (ctx.database is this object).
    assert await add_note(database, "notes", "!room:hs", "first") == 1


async def test_a_second_start_changes_nothing(database: Database) -> None:
    await migrate_connector_tables(database, [NotesConnector()])
    await add_note(database, "notes", "!room:hs", "kept")
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        # Two config sections running the same connector share its tables: migrated once.
        reached = await migrate_connector_tables(database, [NotesConnector("one"), NotesConnector("two")])
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert reached == {"notes": "0002"}
    assert any("alembic_version_notes" in sql for sql in statements)  # it looked...
    changes = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
    assert [sql for sql in statements if sql.lstrip().upper().startswith(changes)] == []  # ...and changed nothing
    async with database.read() as connection:
        assert (await connection.execute(select(note.c.text))).scalars().all() == ["kept"]


async def test_an_upgrade_keeps_the_rows_of_the_older_schema(database: Database) -> None:
    async with database.write() as connection:
        await connection.run_sync(upgrade_connector_schema, "notes", NOTES_TABLES.migrations, "0001")
        await connection.exec_driver_sql("INSERT INTO notes_note (network, text) VALUES ('notes', 'old')")
        columns = await connection.run_sync(lambda sync: [c["name"] for c in inspect(sync).get_columns("notes_note")])
    assert "room_id" not in columns
    await migrate_connector_tables(database, [NotesConnector()])
    async with database.read() as connection:
        rows = (await connection.execute(select(note.c.text, note.c.room_id))).all()
    assert [tuple(row) for row in rows] == [("old", "")]


async def test_a_bad_declaration_stops_the_start_with_what_to_fix(database: Database, tmp_path: Path) -> None:
    class Clashing(NotesConnector):
        tables = ConnectorTables(schema="notes", migrations=tmp_path)

    with pytest.raises(ConfigError, match=r"connectors\.other: two connectors declare tables named 'notes'"):
        await migrate_connector_tables(database, [NotesConnector(), Clashing("other")])

    class BadName(NotesConnector):
        tables = ConnectorTables(schema="Notes; DROP", migrations=NOTES_TABLES.migrations)

    with pytest.raises(StoreError, match="must be lower-case letters"):
        await migrate_connector_tables(database, [BadName()])

    class Missing(NotesConnector):
        tables = ConnectorTables(schema="missing", migrations=tmp_path / "nowhere")

    with pytest.raises(StoreError, match="no directory"):
        await migrate_connector_tables(database, [Missing()])
