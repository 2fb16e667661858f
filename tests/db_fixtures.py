"""Database fixtures (SQLite always; PostgreSQL when BRIDGEKIT_TEST_POSTGRES_URL is set).

``database_url`` runs each test that uses it twice: on a fresh SQLite file, and on a fresh,
uniquely named PostgreSQL database (created on the server the variable points at and dropped
afterwards). Without the variable the PostgreSQL half is skipped, and the run's summary says so.
``database`` is an opened (migrated) :class:`~bridgekit.store.Database` on that URL.

Fresh databases are cheap: a test that asks for ``database`` gets a copy of one migrated once per
session (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so opening it only
checks the schema version. A test that asks for ``database_url`` alone gets an empty database.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridgekit.store import Database

POSTGRES_URL_VARIABLE = "BRIDGEKIT_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = (
    f"PostgreSQL store tests skipped: set {POSTGRES_URL_VARIABLE}="
    "postgresql+asyncpg://user@127.0.0.1:5432/postgres to run them"
)


@dataclass(frozen=True)
class DatabaseTemplates:
    """Migrated databases to copy, made once per test session."""

    sqlite_file: Path
    postgres_admin: AsyncEngine | None
    """Autocommit engine on the server's maintenance database; None without the variable."""
    postgres_template: str


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DatabaseTemplates]:
    sqlite_file = tmp_path_factory.mktemp("template") / "bridgekit.db"
    db = await Database.open(f"sqlite+aiosqlite:///{sqlite_file}")
    # Closing the last connection checkpoints the WAL into the main file, so a copy is whole.
    await db.close()

    admin_url = os.environ.get(POSTGRES_URL_VARIABLE)
    template = f"bridgekit_template_{uuid.uuid4().hex[:16]}"
    if not admin_url:
        yield DatabaseTemplates(sqlite_file, None, template)
        return
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
    await _create_postgres_database(admin, template)
    try:
        db = await Database.open(admin.url.set(database=template).render_as_string(False))
        await db.close()
        yield DatabaseTemplates(sqlite_file, admin, template)
    finally:
        await _drop_postgres_database(admin, template)
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_templates: DatabaseTemplates
) -> AsyncIterator[str]:
    """The URL of a fresh database: a SQLite file, or a new PostgreSQL database.

    Empty, unless the test also uses ``database``: then it is already migrated.
    """
    migrated = "database" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "bridgekit.db"
        if migrated:
            shutil.copyfile(database_templates.sqlite_file, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin = database_templates.postgres_admin
    if admin is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    name = f"bridgekit_test_{uuid.uuid4().hex[:16]}"
    await _create_postgres_database(admin, name, database_templates.postgres_template if migrated else None)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_postgres_database(admin, name)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An opened, migrated database on ``database_url``, closed after the test."""
    db = await Database.open(database_url)
    try:
        yield db
    finally:
        await db.close()


async def _create_postgres_database(admin: AsyncEngine, name: str, template: str | None = None) -> None:
    clause = f' TEMPLATE "{template}"' if template else ""
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')


async def _drop_postgres_database(admin: AsyncEngine, name: str) -> None:
    async with admin.connect() as connection:
        # FORCE: a test that failed half-way may have left a connection open.
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly, at the end of the run, that the PostgreSQL half did not run."""
    skipped = terminalreporter.stats.get("skipped", [])
    if any(POSTGRES_SKIP_REASON in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(POSTGRES_SKIP_REASON, yellow=True, bold=True)
