"""The servers the ingest benchmark measures, and everything each needs around it.

A contender knows how to prepare its world (a fresh database, a config, a virtualenv), the command
that starts it, and how to count what it stored once it has stopped. :class:`ServerProcess` starts
that command and stops exactly that process again (by its PID, on errors too). :class:`StubHomeserver`
answers the few Client-Server calls a bridge makes at start-up, so bridgekit starts cleanly without
a real Synapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import inspect
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

from bench import wire
from bench.workload import SERVER_NAME

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
MAUTRIX_VENV = REPO / ".bench" / "mautrix-venv"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
APPSERVICE_ID = "bench"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Skip(Exception):
    """The contender cannot run here (yet); the message says why, and the run goes on."""


@dataclass(frozen=True, slots=True)
class Tokens:
    as_token: str
    hs_token: str


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc; None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the numeric fields follow its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


SETTLE_POLL_S = 0.25
SETTLE_MAX_S = 15.0
SETTLE_IDLE = 0.05  # a process using under 5 % of a core counts as quiet


async def wait_quiet(pids: list[int], max_s: float = SETTLE_MAX_S) -> bool:
    """Wait until every process in ``pids`` uses under 5 % of a core for 0.25 s (a process that
    is gone counts as quiet); False when ``max_s`` passed first.

    Before a measurement: work a server does after answering (persisting, pushing, handing
    events to its workers) must not land on the next measurement's clock.
    """
    deadline = time.perf_counter() + max_s
    before = [process_cpu_seconds(pid) for pid in pids]
    while time.perf_counter() < deadline:
        await asyncio.sleep(SETTLE_POLL_S)
        after = [process_cpu_seconds(pid) for pid in pids]
        used = [a - b for a, b in zip(after, before, strict=True) if a is not None and b is not None]
        if all(cpu < SETTLE_IDLE * SETTLE_POLL_S for cpu in used):
            return True
        before = after
    return False


class ServerProcess:
    """One server subprocess; output goes to a log file we show when something fails."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def exited(self) -> bool:
        return self._proc is not None and self._proc.returncode is not None

    def cpu_seconds(self) -> float | None:
        """User + system CPU the process has used so far, to show who is busy."""
        if self._proc is None or self.exited:
            return None
        return process_cpu_seconds(self._proc.pid)

    async def stop(self) -> None:
        """SIGTERM, a grace period for a clean shutdown, then SIGKILL; always this PID only."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class StubHomeserver:
    """Answers the start-up calls of a bridge: versions, the appservice ping, bot registration.

    Anything else gets ``200 {}`` and is remembered, so the report can say what the bridge asked.
    """

    def __init__(self) -> None:
        self.port = wire.free_port()
        self.calls: dict[str, int] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await wire.start_server(self._handle, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        route = path.split("?", 1)[0]
        key = f"{method} {route}"
        self.calls[key] = self.calls.get(key, 0) + 1
        if route == "/_matrix/client/versions":
            versions = [f"v1.{minor}" for minor in range(1, 14)]
            return 200, json.dumps({"versions": versions, "unstable_features": {}}).encode()
        if route.startswith("/_matrix/client/v1/appservice/") and route.endswith("/ping"):
            return 200, b'{"duration_ms":0}'
        if route == "/_matrix/client/v3/register":
            return 200, json.dumps({"user_id": f"@_bridgekit_bot:{SERVER_NAME}"}).encode()
        if route == "/_matrix/client/v3/account/whoami":
            return 200, json.dumps({"user_id": f"@_bridgekit_bot:{SERVER_NAME}"}).encode()
        return 200, b"{}"


def hermetic_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without BRIDGEKIT_* overrides that would leak into the contender."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGEKIT_")}
    env.update(extra)
    return env


class Contender:
    """Base: a named server the benchmark starts, loads and stops."""

    name = "contender"
    has_ready_endpoint = False

    def __init__(self, workdir: Path, tokens: Tokens) -> None:
        self.workdir = workdir
        self.tokens = tokens
        self.port = wire.free_port()
        self.notes: list[str] = []

    async def prepare(self) -> None:
        """Create whatever the server needs; raise :class:`Skip` when it cannot run."""

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    async def stored_events(self) -> int | None:
        """Events in the contender's durable inbox after it stopped (None: it has none)."""
        return None

    async def helper_pids(self) -> list[int]:
        """Processes besides the server that work for it (PostgreSQL backends), for CPU shares."""
        return []

    async def cleanup(self) -> None:
        """Undo :meth:`prepare` (drop the database); the work directory is removed by the caller."""


class NullContender(Contender):
    """The null server: shows what the load generator itself can push."""

    name = "null-server"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, str(BENCH_DIR / "wire.py"), "--port", str(self.port)], hermetic_env({})


class MautrixContender(Contender):
    """mautrix-python's AppService in its own virtualenv (created on first use, then reused)."""

    name = "mautrix"

    async def prepare(self) -> None:
        python = MAUTRIX_VENV / "bin" / "python"
        if not python.exists():
            print(f"  creating {MAUTRIX_VENV.relative_to(REPO)} (once) and installing mautrix ...",
                  flush=True)
            await _check_call([sys.executable, "-m", "venv", str(MAUTRIX_VENV)])
            await _check_call([str(python), "-m", "pip", "install", "--quiet", "mautrix", "aiohttp"])
        probe = await asyncio.create_subprocess_exec(
            str(python), "-c", "import mautrix, aiohttp; print(mautrix.__version__, aiohttp.__version__)",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        out, _ = await probe.communicate()
        if probe.returncode != 0:
            raise Skip(f"mautrix virtualenv is broken: {out.decode(errors='replace').strip()}")
        mautrix_version, aiohttp_version = out.decode().split()
        self.notes.append(f"mautrix {mautrix_version}, aiohttp {aiohttp_version}")

    def command(self) -> tuple[list[str], dict[str, str]]:
        python = MAUTRIX_VENV / "bin" / "python"
        env = hermetic_env({"BENCH_AS_TOKEN": self.tokens.as_token,
                            "BENCH_HS_TOKEN": self.tokens.hs_token})
        return [str(python), str(BENCH_DIR / "mautrix_peer.py"), "--port", str(self.port)], env


class ReferenceContender(Contender):
    """Bare FastAPI + sqlite3, durable: the yardstick in bench/reference_server.py."""

    name = "reference-sqlite"
    has_ready_endpoint = True

    def __init__(self, workdir: Path, tokens: Tokens) -> None:
        super().__init__(workdir, tokens)
        self.db_path = workdir / "reference.db"

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, str(BENCH_DIR / "reference_server.py"),
                "--port", str(self.port), "--db", str(self.db_path)]
        return argv, hermetic_env({"BENCH_HS_TOKEN": self.tokens.hs_token})

    async def stored_events(self) -> int | None:
        return _sqlite_count(self.db_path)


class BridgekitContender(Contender):
    """``bridgekit run`` with no connectors, on SQLite or PostgreSQL, optionally pre-populated."""

    has_ready_endpoint = True

    def __init__(self, workdir: Path, tokens: Tokens, backend: str, homeserver_port: int,
                 populate: int, profile_path: Path | None = None, code: Path | None = None) -> None:
        super().__init__(workdir, tokens)
        self.profile_path = profile_path
        self.backend = backend
        self.code = code
        """Another checkout whose bridgekit runs instead of this one's (``--baseline``): first on
        PYTHONPATH, ahead of the virtualenv's editable install of this one."""
        self.name = f"bridgekit-{backend}" + ("-base" if code is not None else "")
        self.homeserver_port = homeserver_port
        self.populate = populate
        self.db_path = workdir / f"{self.name}.db"
        self.pg_database = f"bridgekit_bench_{os.getpid()}" + ("_base" if code is not None else "")
        self._pg_created = False
        if backend == "sqlite":
            self.db_url = f"sqlite+aiosqlite:///{self.db_path}"
        else:
            self.db_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.pg_database}"
        self.config_path = workdir / f"config-{self.name}.yaml"

    async def prepare(self) -> None:
        executable = Path(sys.executable).parent / "bridgekit"
        if not executable.exists():
            raise Skip(f"{executable} not found (is bridgekit installed in this virtualenv?)")
        if self.backend == "postgres":
            await self._create_pg_database()
        registration = self.workdir / "registration.yaml"
        registration.write_text(yaml.safe_dump({
            "id": APPSERVICE_ID,
            "url": f"http://127.0.0.1:{self.port}",
            "as_token": self.tokens.as_token,
            "hs_token": self.tokens.hs_token,
            "sender_localpart": "_bridgekit_bot",
            "rate_limited": False,
            "namespaces": {"users": [{"exclusive": True, "regex": f"@_bench_.*:{SERVER_NAME}"}],
                           "aliases": [], "rooms": []},
        }))
        registration.chmod(0o600)
        self.config_path.write_text(yaml.safe_dump({
            "homeserver": {"url": f"http://127.0.0.1:{self.homeserver_port}",
                           "server_name": SERVER_NAME},
            "appservice": {"id": APPSERVICE_ID,
                           "listen": {"host": "127.0.0.1", "port": self.port},
                           # The benchmark reads /health/ready on `listen` only; a metrics
                           # listener on its fixed default port could clash with another bridge.
                           "metrics_listen": {"port": None},
                           "registration": str(registration)},
            "database": {"url": self.db_url},
            "logging": {"level": "WARNING", "access_log": False},
        }))
        if self.populate:
            started = time.perf_counter()
            how = await populate_portals_and_ghosts(self.db_url, self.populate)
            self.notes.append(f"{self.populate:,} portals + {self.populate:,} ghosts via {how} "
                              f"in {time.perf_counter() - started:.1f} s")

    def command(self) -> tuple[list[str], dict[str, str]]:
        executable = Path(sys.executable).parent / "bridgekit"
        env = hermetic_env({"BRIDGEKIT_AS_TOKEN": self.tokens.as_token,
                            "BRIDGEKIT_HS_TOKEN": self.tokens.hs_token})
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        argv = [str(executable), "run", "-c", str(self.config_path)]
        if self.profile_path is not None:
            # The console script is a Python file, so cProfile can run it as is; the profile is
            # written when `run` returns after SIGTERM.
            argv = [sys.executable, "-m", "cProfile", "-o", str(self.profile_path), *argv]
        return argv, env

    async def stored_events(self) -> int | None:
        if self.backend == "sqlite":
            return _sqlite_count(self.db_path)
        conn = await _asyncpg().connect(f"postgresql://postgres@127.0.0.1:5432/{self.pg_database}")
        try:
            exists = await conn.fetchval("SELECT to_regclass('inbox_event') IS NOT NULL")
            if not exists:
                return None
            count: int = await conn.fetchval("SELECT count(*) FROM inbox_event")
            return count
        finally:
            await conn.close()

    async def helper_pids(self) -> list[int]:
        if self.backend != "postgres":
            return []
        conn = await _asyncpg().connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.pg_database,
            )
            return [int(row["pid"]) for row in rows]
        finally:
            await conn.close()

    async def _create_pg_database(self) -> None:
        asyncpg = _asyncpg()
        try:
            conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            raise Skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}") from exc
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.pg_database}"')
            self._pg_created = True
        finally:
            await conn.close()

    async def cleanup(self) -> None:
        if not self._pg_created:
            return
        conn = await _asyncpg().connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            self._pg_created = False
        finally:
            await conn.close()


def _asyncpg() -> Any:
    # asyncpg ships no type information; reached by name so strict mypy needs no ignore comments.
    return importlib.import_module("asyncpg")


async def _check_call(argv: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode != 0:
        raise Skip(f"{argv[0]} {argv[1]} failed: {out.decode(errors='replace')[-2000:]}")


def _sqlite_count(path: Path) -> int | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inbox_event'"
        ).fetchone()
        if not found:
            return None
        count: int = conn.execute("SELECT count(*) FROM inbox_event").fetchone()[0]
        return count
    finally:
        conn.close()


# --- populating portals and ghosts ---------------------------------------------------------------
# The store is being written while this benchmark is, so it is reached by name at run time
# (importlib) rather than imported: the benchmark type-checks and runs whatever state it is in,
# and says "skipped" with the reason when a piece is missing.


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def populate_portals_and_ghosts(db_url: str, n: int) -> str:
    """Migrate the database and insert ``n`` portals and ``n`` ghosts; returns how it was done."""
    try:
        store = importlib.import_module("bridgekit.store")
        database_cls = store.Database
    except (ImportError, AttributeError) as exc:
        raise Skip(f"bridgekit.store.Database is not there yet ({exc})") from exc
    db = await _maybe_await(database_cls.open(db_url))
    try:
        try:
            bulk = importlib.import_module("tests.store.bulk")
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("tests"):
                raise
            await _populate_from_models(db, n)
            return "the models' tables (tests/store/bulk.py not found)"
        await bulk.populate_portals_and_ghosts(db, n)
        return "tests/store/bulk.py"
    finally:
        for closer in ("close", "aclose", "dispose"):
            if hasattr(db, closer):
                await _maybe_await(getattr(db, closer)())
                break


async def _populate_from_models(db: Any, n: int) -> None:
    from sqlalchemy import MetaData

    models = importlib.import_module("bridgekit.store.models")
    metadata = next((value.metadata for value in vars(models).values()
                     if isinstance(getattr(value, "metadata", None), MetaData)), None)
    if metadata is None or not {"portal", "ghost"} <= set(metadata.tables):
        raise Skip("bridgekit.store.models has no 'portal' and 'ghost' tables yet")
    engine = getattr(db, "engine", None)
    if engine is None:
        raise Skip("bridgekit.store.Database exposes no 'engine' to insert with")
    async with engine.begin() as conn:
        for table_name in ("portal", "ghost"):
            table = metadata.tables[table_name]
            rows = [{col.name: value for col in table.columns
                     if (value := _fake_value(col, i)) is not None} for i in range(n)]
            await conn.execute(table.insert(), rows)


_WELL_KNOWN: dict[str, Callable[[int], str]] = {
    "network": lambda i: "irc",
    "remote_id": lambda i: f"#channel{i}",
    "room_id": lambda i: f"!portal{i}:{SERVER_NAME}",
    "mxid": lambda i: f"@_irc_nick{i}:{SERVER_NAME}",
    "user_id": lambda i: f"@_irc_nick{i}:{SERVER_NAME}",
    "name": lambda i: f"name {i}",
}


def _fake_value(column: Any, i: int) -> Any:
    """A plausible value for a required column (or a well-known one); None leaves it to defaults."""
    if column.name in _WELL_KNOWN and _python_type(column) is str:
        return _WELL_KNOWN[column.name](i)
    required = not column.nullable and column.default is None and column.server_default is None
    if not required or (column.primary_key and column.autoincrement in (True, "auto")
                        and _python_type(column) is int):
        return None
    kind = _python_type(column)
    if kind is str:
        length = getattr(column.type, "length", None) or 64
        return f"{column.name[:8]}{i}"[:length]
    if kind is bool:
        return False
    if kind is int:
        return i
    if kind is float:
        return float(i)
    if kind is datetime:
        return datetime.now(UTC)
    if kind in (dict, list):
        return kind()
    if kind is bytes:
        return b""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    return None


def _python_type(column: Any) -> Any:
    with contextlib.suppress(NotImplementedError):
        return column.type.python_type
    return None
