"""Applying the Alembic migrations from code: no alembic.ini, no logging set-up.

:class:`~bridgekit.store.engine.Database` calls :func:`upgrade_to_head` on its writer connection
at open. Developers who write a new revision use :func:`alembic_config` (see
``migrations/README``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bridgekit.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIRECTORY = Path(__file__).with_name("migrations")

HEAD_REVISION = "0004"
"""The newest migration. When the database is already there, Alembic is not even imported: it
costs 8 MB of memory for the bridge's whole life (a test keeps this equal to Alembic's head)."""

MIGRATION_LOCK_KEY = 0x6272_6964_6765
"""PostgreSQL advisory lock taken while migrating, so two processes starting together take turns.

(SQLite needs none: the writer's BEGIN IMMEDIATE already excludes other writers.)
"""


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config pointing at bridgekit's migrations, on a connection or a URL."""
    from alembic.config import Config

    config = Config()
    # Config values go through ConfigParser interpolation, where '%' is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The database's migration revision, or None (a new database, or one Alembic never ran on).

    The catalog is asked first: selecting from a table that is not there would put an ERROR line
    (``relation "alembic_version" does not exist``) in every new PostgreSQL database's server log."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row is not None else None


def _create_at_head(connection: Connection) -> None:
    """A new, empty database: the models' schema at once, stamped with the head revision.

    The same schema the migrations build (a test compares them), without importing Alembic."""
    from bridgekit.store.tables import metadata

    metadata.create_all(connection)
    connection.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD_REVISION})


def upgrade_to_head(connection: Connection) -> None:
    """Apply every pending migration inside the connection's current transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    revision = current_revision(connection)
    if revision == HEAD_REVISION:
        return
    if revision is None and not inspect(connection).get_table_names():
        _create_at_head(connection)
        return
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(connection=connection), "head")
    except CommandError as error:
        # Typically a database written by a newer bridgekit, whose revision this one lacks.
        raise StoreError(
            f"cannot migrate the database: {error}. If a newer bridgekit version used this "
            "database, run that version (downgrades are not automatic)."
        ) from error


__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIRECTORY",
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "upgrade_to_head",
]
