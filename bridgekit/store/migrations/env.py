"""Alembic environment: runs the migrations on the connection bridgekit hands over.

At run time :func:`bridgekit.store.migrate.upgrade_to_head` passes a connection already inside
a write transaction (``config.attributes["connection"]``). For developers running the
``alembic`` command (e.g. ``revision --autogenerate``), a ``sqlalchemy.url`` in the config is
used instead, through an async engine. Logging is left to the application: no fileConfig here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bridgekit.store.tables import metadata


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "set sqlalchemy.url, or run migrations through bridgekit.store.Database.open"
        )
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_on_url(url))


_run()
