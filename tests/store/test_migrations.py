"""The schema: created by the migrations at open, equal to the models, reversible."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection

from bridgekit.store import Database, KeyValue, metadata
from bridgekit.store.migrate import alembic_config


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_open_migrates_an_empty_database_to_head(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        async with db.read() as connection:
            assert await connection.run_sync(_current_revision) == _head()
            tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert set(metadata.tables) <= tables
    finally:
        await db.close()


async def test_reopening_is_a_no_op_that_keeps_the_data(database_url: str) -> None:
    db = await Database.open(database_url)
    async with db.write() as connection:
        await connection.execute(insert(KeyValue), [{"network": "irc", "key": "k", "value": [1]}])
    await db.close()
    for _ in range(2):
        db = await Database.open(database_url)
        try:
            async with db.read() as connection:
                assert await connection.run_sync(_current_revision) == _head()
                assert (await connection.execute(select(KeyValue.value))).scalar_one() == [1]
        finally:
            await db.close()


async def test_open_without_migrate_leaves_an_empty_database_alone(database_url: str) -> None:
    db = await Database.open(database_url, migrate=False)
    try:
        async with db.read() as connection:
            assert await connection.run_sync(lambda sync: inspect(sync).get_table_names()) == []
    finally:
        await db.close()


async def test_the_migrated_schema_equals_the_models(database_url: str) -> None:
    # Built by the migrations themselves (a new database is created from the models directly).
    db = await Database.open(database_url, migrate=False)
    try:
        async with db.write() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(connection=sync), "head"))
        async with db.read() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await db.close()


async def test_a_new_database_is_created_from_the_models_with_the_same_schema(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        async with db.read() as connection:
            assert await connection.run_sync(_current_revision) == _head()
            assert await connection.run_sync(_differences) == []
    finally:
        await db.close()


async def test_the_migrations_downgrade_to_nothing_and_back(database_url: str) -> None:
    db = await Database.open(database_url)
    try:

        def downgrade(connection: Connection) -> None:
            command.downgrade(alembic_config(connection=connection), "base")

        async with db.write() as connection:
            await connection.run_sync(downgrade)
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await db.close()

    db = await Database.open(database_url)
    try:
        async with db.read() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await db.close()


def test_the_head_revision_constant_is_alembics_head() -> None:
    # Start-up skips importing Alembic when the database is at HEAD_REVISION: it must be the head.
    from alembic.script import ScriptDirectory

    from bridgekit.store.migrate import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
