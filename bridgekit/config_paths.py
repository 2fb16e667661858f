"""File paths in the config, taken relative to the config file, whatever directory the bridge is
started from (as ``appservice.registration`` always was).

So are SQLite URLs in a connector's section (the webhook connector's ``database``). The SQLite
file used to be relative to the working directory: a bridge started from elsewhere
(a systemd unit, another shell) silently began on a new, empty database. Now it is relative to
the config file; and when the database is found only at the old place, the bridge refuses to
start and says how to move it, rather than start empty beside it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bridgekit.config import BridgeConfig
from bridgekit.config_loader import LoadedConfig
from bridgekit.errors import ConfigError


def resolve_config_paths(loaded: LoadedConfig, *, cwd: Path | None = None) -> BridgeConfig:
    """The config with its file paths absolute (relative ones taken from the config file's
    directory). Raises :class:`ConfigError` when the SQLite database exists only where the
    working directory (``cwd``) would have put it."""
    config = loaded.config
    base = loaded.path.absolute().parent
    updates: dict[str, object] = {}
    double_puppet = config.double_puppet.registration
    if double_puppet:
        updates["double_puppet"] = config.double_puppet.model_copy(
            update={"registration": str(_absolute(base, double_puppet))})
    here = Path.cwd() if cwd is None else cwd
    database_url = _resolved_sqlite_url("database.url", config.database.url, base, here, loaded.path)
    if database_url != config.database.url:
        updates["database"] = config.database.model_copy(update={"url": database_url})
    # A connector's own SQLite database (the webhook connector's ``database``) is a path too:
    # any connector key whose value is a SQLite URL with a relative file.
    connectors = {}
    for name, section in config.connectors.items():
        changed = {key: resolved for key, value in section.settings().items() if isinstance(value, str)
                   and (resolved := _resolved_sqlite_url(f"connectors.{name}.{key}", value, base, here, loaded.path))
                   != value}
        connectors[name] = section.model_copy(update=changed) if changed else section
    if any(connectors[name] is not section for name, section in config.connectors.items()):
        updates["connectors"] = connectors
    return config.model_copy(update=updates) if updates else config


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, an in-memory one, or no URL)."""
    if not url.startswith("sqlite"):
        return None  # any other text of a connector's section: not even parsed
    parsed = _parse(url)
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def describe_database(url: str) -> str:
    """The database as the start-up log names it: the absolute file, or the URL without password."""
    file = sqlite_file(url)
    if file is not None:
        return f"SQLite file {file}"
    parsed = _parse(url)
    return parsed.render_as_string(hide_password=True) if parsed is not None else "?"


def _resolved_sqlite_url(key: str, url: str, base: Path, cwd: Path, config_path: Path) -> str:
    file = sqlite_file(url)
    if file is None or file.is_absolute():
        return url
    new, old = base / file, cwd.absolute() / file
    if old != new and old.exists() and not new.exists():
        move = f"mv {shlex.quote(str(old))} {shlex.quote(str(new))}"
        raise ConfigError(
            f"{key}: the SQLite file {file} is taken relative to the config file ({config_path}) now, "
            f"so it is {new}, which does not exist; the database is at {old} (relative to the working "
            f"directory, where earlier versions looked). Stop every bridge using it and move it: {move} "
            f"(with its -wal and -shm files if present), or set an absolute path in {key}"
        )
    parsed = _parse(url)
    assert parsed is not None  # sqlite_file parsed it
    return parsed.set(database=str(new)).render_as_string(hide_password=False)


def _absolute(base: Path, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _parse(url: str) -> URL | None:
    try:
        return make_url(url)
    except ArgumentError:
        return None


__all__ = ["describe_database", "resolve_config_paths", "sqlite_file"]
