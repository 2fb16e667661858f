"""Applying the Alembic migrations from code: no alembic.ini, no logging set-up.

:class:`~bridgekit.store.engine.Database` calls :func:`upgrade_to_head` on its writer connection
at open. Developers who write a new revision use :func:`alembic_config` (see
``migrations/README``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from bridgekit.errors import StoreError

MIGRATIONS_DIRECTORY = Path(__file__).with_name("migrations")

_MIGRATION_LOCK_KEY = 0x6272_6964_6765
"""PostgreSQL advisory lock taken while migrating, so two processes starting together take turns.

(SQLite needs none: the writer's BEGIN IMMEDIATE already excludes other writers.)
"""


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config pointing at bridgekit's migrations, on a connection or a URL."""
    config = Config()
    # Config values go through ConfigParser interpolation, where '%' is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Apply every pending migration inside the connection's current transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
    try:
        command.upgrade(alembic_config(connection=connection), "head")
    except CommandError as error:
        # Typically a database written by a newer bridgekit, whose revision this one lacks.
        raise StoreError(
            f"cannot migrate the database: {error}. If a newer bridgekit version used this "
            "database, run that version (downgrades are not automatic)."
        ) from error


__all__ = ["MIGRATIONS_DIRECTORY", "alembic_config", "upgrade_to_head"]
