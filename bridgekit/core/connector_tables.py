"""Start-up: the connectors' own tables migrated, after bridgekit's (``store/connector_migrate.py``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bridgekit.connector import NetworkConnector, TableOwner
from bridgekit.errors import ConfigError
from bridgekit.store import Database
from bridgekit.store.connector_migrate import upgrade_connector_schema

log = logging.getLogger(__name__)


async def migrate_connector_tables(database: Database, connectors: Sequence[NetworkConnector]) -> dict[str, str | None]:
    """Upgrade each declared schema to its newest revision (once, however many config sections
    run its connector); the revision each schema is at."""
    migrations: dict[str, object] = {}
    reached: dict[str, str | None] = {}
    for connector in connectors:
        if not isinstance(connector, TableOwner):
            continue
        tables = connector.tables
        known = migrations.setdefault(tables.schema, tables.migrations.resolve())
        if known != tables.migrations.resolve():
            raise ConfigError(
                f"connectors.{connector.name}: two connectors declare tables named {tables.schema!r} with "
                "different migrations; each connector's schema name must be its own"
            )
        if tables.schema in reached:
            continue
        async with database.write() as connection:
            reached[tables.schema] = await connection.run_sync(
                upgrade_connector_schema, tables.schema, tables.migrations
            )
        log.info("tables of %s at revision %s", tables.schema, reached[tables.schema])
    return reached


__all__ = ["migrate_connector_tables"]
