"""Connectors' own tables: their Alembic migrations, applied in the bridge's database.

A connector that keeps tables of its own declares a *schema name* and a directory of Alembic
revision files (``ConnectorTables`` in the contract). At start-up, after bridgekit's own
migrations, each schema is upgraded to its head in one write transaction. Each schema has its
own version table, ``alembic_version_<schema>``, so its revisions are numbered independently of
bridgekit's and of other connectors' (they never share a history), and bridgekit's
``alembic_version`` is never touched. No ``env.py`` is needed: the revisions run on the
connection handed over here, with SQLite batch mode on (``op.batch_alter_table`` works).

The revisions' own table names should start with the schema name (``webhook_hook``), so that
two connectors cannot collide; two config sections running the same connector share its tables,
which is why rows should carry the connector's name (``ctx.name``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from bridgekit.errors import StoreError
from bridgekit.store.migrate import MIGRATION_LOCK_KEY

SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def version_table(schema: str) -> str:
    """The table holding ``schema``'s migration revision."""
    return f"alembic_version_{schema}"


def check_schema_name(schema: str) -> None:
    if not SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"connector table schema {schema!r} must be lower-case letters, digits and _ (at most 41), "
            "starting with a letter: it names the table alembic_version_<schema>"
        )


def upgrade_connector_schema(
    connection: Connection, schema: str, migrations: Path, target: str = "head"
) -> str | None:
    """Apply ``migrations`` up to ``target`` inside the connection's transaction; the revision the
    schema is at afterwards. Run through ``AsyncConnection.run_sync``."""
    check_schema_name(schema)
    if not migrations.is_dir():
        raise StoreError(f"the migrations of connector tables {schema!r} are missing: no directory {migrations}")
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    script = ScriptDirectory(migrations, version_locations=[migrations])

    def upgrade(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, revision)

    reached: list[str | None] = []
    try:
        with EnvironmentContext(Config(), script, fn=upgrade, destination_rev=target) as environment:
            environment.configure(
                connection=connection, version_table=version_table(schema), render_as_batch=True,
                # Comparing only this schema's tables, should anyone autogenerate against it.
                include_name=lambda name, kind, _parent: kind != "table" or str(name).startswith(schema),
            )
            with environment.begin_transaction():
                environment.run_migrations()
            reached.append(environment.get_context().get_current_revision())
    except CommandError as error:
        raise StoreError(
            f"cannot migrate the tables of connector schema {schema!r}: {error}. If a newer version of the "
            "connector used this database, run that version (downgrades are not automatic)."
        ) from error
    return reached[0]


__all__ = ["SCHEMA_NAME", "check_schema_name", "upgrade_connector_schema", "version_table"]
