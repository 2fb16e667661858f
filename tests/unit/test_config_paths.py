"""Paths in the config are relative to the config file; the SQLite file found only at the old,
working-directory-relative place stops the start with the move to make."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridgekit.config_loader import load_config
from bridgekit.config_paths import describe_database, resolve_config_paths
from bridgekit.errors import ConfigError


def config_with(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "etc"
    directory.mkdir()
    path = directory / "config.yaml"
    path.write_text("homeserver: {url: 'http://hs.test', server_name: example.org}\n" + text)
    return path


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:////var/lib/bridgekit/b.db", "sqlite+aiosqlite:///:memory:",
                                 "postgresql+asyncpg://bridge:secret@db/bridge"])
def test_absolute_in_memory_and_server_databases_are_left_alone(tmp_path: Path, url: str) -> None:
    loaded = load_config(config_with(tmp_path, f"database: {{url: '{url}'}}\n"), environ={})
    assert resolve_config_paths(loaded, cwd=tmp_path).database.url == url


def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path: Path) -> None:
    loaded = load_config(config_with(tmp_path, "database: {url: 'sqlite+aiosqlite:///data/b.db'}\n"
                                               "double_puppet: {registration: dp.yaml}\n"), environ={})
    resolved = resolve_config_paths(loaded, cwd=tmp_path)
    assert resolved.database.url == f"sqlite+aiosqlite:///{tmp_path / 'etc' / 'data' / 'b.db'}"
    assert resolved.double_puppet.registration == str(tmp_path / "etc" / "dp.yaml")
    assert describe_database(resolved.database.url) == f"SQLite file {tmp_path / 'etc' / 'data' / 'b.db'}"


def test_the_url_of_a_server_database_is_logged_without_its_password() -> None:
    assert describe_database("postgresql+asyncpg://bridge:secret@db/bridge") == "postgresql+asyncpg://bridge:***@db/bridge"


def test_a_database_at_both_places_is_the_config_relative_one(tmp_path: Path) -> None:
    loaded = load_config(config_with(tmp_path, "database: {url: 'sqlite+aiosqlite:///b.db'}\n"), environ={})
    (tmp_path / "b.db").write_bytes(b"old")
    (tmp_path / "etc" / "b.db").write_bytes(b"new")
    assert resolve_config_paths(loaded, cwd=tmp_path).database.url.endswith(f"{tmp_path / 'etc' / 'b.db'}")


def test_a_database_only_at_the_old_place_is_refused_with_the_move(tmp_path: Path) -> None:
    loaded = load_config(config_with(tmp_path, "database: {url: 'sqlite+aiosqlite:///b.db'}\n"), environ={})
    (tmp_path / "b.db").write_bytes(b"old")
    with pytest.raises(ConfigError, match=r"database\.url") as refused:
        resolve_config_paths(loaded, cwd=tmp_path)
    assert f"mv {tmp_path / 'b.db'} {tmp_path / 'etc' / 'b.db'}" in str(refused.value)


def test_a_connectors_sqlite_url_is_resolved_and_refused_at_the_old_place_like_the_bridges(tmp_path: Path) -> None:
    loaded = load_config(config_with(tmp_path, "connectors:\n  webhook:\n    database: sqlite+aiosqlite:///wh.db\n"
                                               "    public_url: https://hooks.example.org\n"), environ={})
    settings = resolve_config_paths(loaded, cwd=tmp_path).connectors["webhook"].settings()
    assert settings["database"] == f"sqlite+aiosqlite:///{tmp_path / 'etc' / 'wh.db'}"
    assert settings["public_url"] == "https://hooks.example.org"  # not a SQLite URL: left alone
    (tmp_path / "wh.db").write_bytes(b"old")
    with pytest.raises(ConfigError, match=r"connectors\.webhook\.database: the SQLite file wh\.db"):
        resolve_config_paths(loaded, cwd=tmp_path)
