"""The webhook database's schema versions, and the migrations between them.

A new database gets the models' schema at once (``create_all``), stamped with
:data:`SCHEMA_VERSION`. An existing one is brought up step by step: its version is read from
``webhook_schema_version``; a database without that table was made before versions existed
(the schema of commit fa2620c) and counts as version 0. Each step is written so that running it
again is harmless (columns and indexes are added only when missing): on SQLite the driver
commits DDL as it goes, so a crash in the middle of a step leaves part of it done, and the next
start finishes it before stamping.

A test (tests/webhook/test_store_migration.py) upgrades a version-0 database and compares the
result with a new database's schema.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


VERSION_TABLE = "webhook_schema_version"


def _v1_authority_and_replay(connection: Connection) -> None:
    """Hooks can be suspended (their creator left the room); GitHub bodies are remembered."""
    for table in ("webhook_hook", "webhook_outbound"):
        _add_column(connection, table, "status", "VARCHAR(16) DEFAULT 'active' NOT NULL")
        _add_column(connection, table, "suspended_reason", "TEXT")
    _add_column(connection, "webhook_inbound", "body_digest", "VARCHAR(64)")
    connection.execute(text(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_webhook_inbound_body_digest ON webhook_inbound (hook_id, body_digest)"
    ))


_STEPS: tuple[Callable[[Connection], None], ...] = (_v1_authority_and_replay,)

SCHEMA_VERSION = len(_STEPS)


def migrate(connection: Connection) -> int:
    """Bring the database on ``connection`` to :data:`SCHEMA_VERSION`; returns the version it had
    (None-like 0 for a database from before versions, -1 for a new one)."""
    tables = set(inspect(connection).get_table_names())
    if "webhook_hook" not in tables:
        Base.metadata.create_all(connection)
        _stamp(connection, SCHEMA_VERSION)
        return -1
    if VERSION_TABLE not in tables:
        Base.metadata.tables[VERSION_TABLE].create(connection)
    found = connection.execute(text(f"SELECT MAX(version) FROM {VERSION_TABLE}")).scalar()  # noqa: S608
    version = int(found) if found is not None else 0
    for number, step in enumerate(_STEPS, start=1):
        if number > version:
            step(connection)
            _stamp(connection, number)
    return version


def _add_column(connection: Connection, table: str, column: str, ddl: str) -> None:
    existing = {info["name"] for info in inspect(connection).get_columns(table)}
    if column not in existing:
        connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def _stamp(connection: Connection, version: int) -> None:
    connection.execute(text(f"DELETE FROM {VERSION_TABLE}"))  # noqa: S608
    connection.execute(text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:version)"), {"version": version})  # noqa: S608


__all__ = ["SCHEMA_VERSION", "VERSION_TABLE", "Base", "migrate"]
