"""What a bridge imports at start, checked in a fresh interpreter: a connector that is not configured
is never imported, and the heavy modules load on first use (Alembic only to migrate an existing
database, ``cryptography`` only when credentials are encrypted). Each one imported at start is
resident memory for the life of the process (issue 16: ``bridgekit run`` at rest), and imports
are easy to bring back by accident: one module-level ``import`` undoes it, and nothing else fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Never imported at start: only when a feature that needs them is used.
LAZY = ("alembic", "cryptography")
# Never imported by a bridge on SQLite: the PostgreSQL dialect (2 MB; upsert.dialect_module and
# models.JsonValue name it only when a statement is compiled for PostgreSQL), and pydantic v1
# (1.4 MB; FastAPI looks for v1 models in each route, bridgekit/_lean_imports.py marks it absent).
NOT_ON_SQLITE = ("sqlalchemy.dialects.postgresql", "pydantic.v1")
# Never imported by a running bridge: SQLAlchemy's ORM (6-7 MB; the stores use the Core tables of
# store/tables.py, and sqlalchemy.ext.asyncio's package __init__ is kept lean by
# bridgekit/_lean_imports.py) and uvicorn's command line (uvicorn.main, click, multiprocessing).
NOT_AT_REST = ("sqlalchemy.orm", "sqlalchemy.ext.asyncio.session", "uvicorn.main", "click", "multiprocessing")


def modules_after(code: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter (names marked absent in
    ``sys.modules``, with None, are not loaded)."""
    script = (textwrap.dedent(code) + "\nimport json, sys\n"
              "print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(name for name in modules if any(name == p or name.startswith(f"{p}.") for p in packages))


def test_the_cli_and_the_composition_root_import_no_connector_and_nothing_lazy() -> None:
    modules = modules_after("import bridgekit.cli, bridgekit.app")
    assert under(modules, "bridges") == []
    assert under(modules, *LAZY) == []


def test_planning_an_irc_only_config_imports_the_irc_connector_alone() -> None:
    """What ``bridgekit run``, ``generate-registration`` and ``doctor`` do with the connectors'
    sections: resolve the factories of the enabled ones (and validate their settings)."""
    modules = modules_after("""
        from bridgekit.config import BridgeConfig
        from bridgekit.core.connectors import connector_factories, plan_connectors
        config = BridgeConfig.model_validate({"connectors": {
            "libera": {"factory": "irc", "server": "irc.example.org", "bot_nick": "bk"},
            "hooks": {"factory": "webhook", "enabled": False},
        }})
        planned = plan_connectors(config, warn=print)
        assert [p.name for p in planned] == ["libera"], planned
        assert len(connector_factories(config)) == 1
    """)
    assert "bridges.irc.connector" in modules  # the check above really resolved the IRC factory
    assert under(modules, "bridges.webhook") == []
    assert under(modules, *LAZY) == []
    # The irc package uses tempora's scheduler only; tempora's __init__ (with python-dateutil, about
    # 1 MB resident) stays out (bridgekit/_lean_imports.py).
    assert "tempora.schedule" in modules
    assert under(modules, "dateutil") == []


def test_httpx_does_not_load_its_command_line_client() -> None:
    """httpx imports its CLI (click, rich, pygments: about 4 MB resident) whenever they are installed,
    and they are (irc -> jaraco.text -> typer -> rich); bridgekit keeps it out (bridgekit/__init__.py)."""
    modules = modules_after("import bridgekit.app, httpx")
    assert under(modules, "httpx._main", "rich", "pygments") == []


def test_a_bridge_on_sqlite_loads_no_postgresql_dialect_and_no_pydantic_v1(tmp_path: Path) -> None:
    """Open a fresh SQLite database (created from the models), use the stores that write with
    ON CONFLICT and a JSON column, and build every listener's app."""
    modules = modules_after(f"""
        import asyncio
        from bridgekit.appservice.app import Resource, create_app
        from bridgekit.store import Database, KeyValueStore
        from bridgekit.store.bridge_stores import BridgeStores

        async def main():
            db = await Database.open("sqlite+aiosqlite:///{tmp_path}/lazy.db")
            try:
                stores = BridgeStores(db)
                await stores.ghosts.remember_name("net", "someone", "@_bk_someone:example.org", "Someone")
                await KeyValueStore(db).set("probe", "key", {{"json": ["value"]}})
                assert await KeyValueStore(db).get("probe", "key") == {{"json": ["value"]}}
                create_app(None, resources=[Resource.APPSERVICE, Resource.CONNECTORS])  # routes with parameters
            finally:
                await db.close()

        asyncio.run(main())
    """)
    assert "sqlalchemy.dialects.sqlite" in modules  # the statements above really were compiled
    assert under(modules, *NOT_ON_SQLITE) == []
    assert under(modules, *NOT_AT_REST) == []


def test_a_running_bridge_loads_no_orm_and_no_uvicorn_command_line(tmp_path: Path) -> None:
    """The stores at work (inbox, portals, ghosts, the outbox's tables), the appservice's app and
    a uvicorn server object: what ``bridgekit run`` has imported once it serves."""
    modules = modules_after(f"""
        import asyncio
        from bridgekit.appservice.app import Resource, create_app
        from bridgekit.core.transactions import parse_transaction_body
        from bridgekit.store import Database
        from bridgekit.store.bridge_stores import BridgeStores
        from bridgekit.store.inbox import InboxStore
        import uvicorn  # after bridgekit, as in `bridgekit run` (bridgekit/__init__ comes first)

        async def main():
            db = await Database.open("sqlite+aiosqlite:///{tmp_path}/rest.db")
            try:
                body = b'{{"events": [{{"type": "m.room.message", "event_id": "$e", "room_id": "!r:x", '
                body += b'"sender": "@a:x", "origin_server_ts": 1, "content": {{"body": "hi"}}}}]}}'
                parsed = parse_transaction_body(body)
                stored = await InboxStore(db).store_transaction("t1", parsed.fingerprint, parsed.rows)
                assert len(stored.row_ids) == 1
                stores = BridgeStores(db)
                await stores.ghosts.remember_name("net", "someone", "@_bk_someone:example.org", "Someone")
                app = create_app(None, resources=[Resource.APPSERVICE])
                uvicorn.Server(uvicorn.Config(app))
            finally:
                await db.close()

        asyncio.run(main())
    """)
    assert "sqlalchemy.ext.asyncio.engine" in modules
    assert under(modules, *NOT_AT_REST) == []


def test_the_lean_packages_give_everything_on_demand() -> None:
    """Names the bridge does not use still import, with the rest of the package (a connector's
    own ORM session, uvicorn.run)."""
    modules = modules_after("""
        import bridgekit
        import uvicorn
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
        from bridgekit.store import Portal
        assert AsyncSession.__name__ == "AsyncSession" and callable(async_sessionmaker)
        assert callable(uvicorn.run) and uvicorn.__version__
        assert Portal.__table__.name == "portal"
        import tempora
        assert str(tempora.parse_timedelta("90 seconds")) == "0:01:30"
    """)
    assert "sqlalchemy.orm" in modules
    assert "uvicorn.main" in modules
    assert "dateutil.parser" in modules


def test_pydantic_models_build_their_validators_on_first_use_and_validate_as_before() -> None:
    """FastAPI's OpenAPI models (which a bridge never validates) are not built at import
    (bridgekit/_lean_imports.py makes ``defer_build`` pydantic's default); a model built on first
    use accepts and refuses what it did."""
    modules_after("""
        import bridgekit
        import pydantic
        from fastapi.openapi.models import OpenAPI
        from bridgekit.config import BridgeConfig

        assert OpenAPI.__pydantic_complete__ is False
        assert OpenAPI.model_validate({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}).info.title == "t"
        assert OpenAPI.__pydantic_complete__ is True
        try:
            OpenAPI.model_validate({"openapi": "3.1.0"})
        except pydantic.ValidationError as error:
            assert error.errors()[0]["loc"] == ("info",), error.errors()
        else:
            raise AssertionError("a document without info was accepted")
        try:
            BridgeConfig.model_validate({"homeserver": {"url": 5}})
        except pydantic.ValidationError:
            pass
        else:
            raise AssertionError("a homeserver URL that is a number was accepted")
    """)
