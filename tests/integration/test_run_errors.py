"""``bridgekit run`` refuses clearly when it cannot start: one line saying why and what to do, exit
status 2 for a problem of the config (an address in use, a database at the old place), 1 for
another (the database server is down)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bridgekit.demo.ports import PortReservation
from bridgekit.testing.bridge_process import BridgeProcess, bridgekit_command

pytestmark = pytest.mark.integration


TOKENS = {"BRIDGEKIT_AS_TOKEN": "a" * 20, "BRIDGEKIT_HS_TOKEN": "b" * 20}


async def run_until_exit(config: Path, cwd: Path | None = None) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *bridgekit_command(), "run", "-c", str(config),
        env={**TOKENS, "PATH": "/usr/bin:/bin"}, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, output.decode()


async def test_an_unreachable_database_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    # Reserved, nobody listens: connections to `closed` are refused; the listeners get free ports.
    with PortReservation.acquire() as closed, PortReservation.acquire() as listen, \
            PortReservation.acquire() as metrics:
        config = tmp_path / "config.yaml"
        config.write_text(
            "homeserver: {url: 'http://127.0.0.1:9', server_name: localhost}\n"
            f"appservice: {{listen: {{port: {listen.port}}}, metrics_listen: {{port: {metrics.port}}}}}\n"
            f"database: {{url: 'postgresql+asyncpg://bridge@127.0.0.1:{closed.port}/bridge'}}\n"
        )
        code, text = await run_until_exit(config)
    assert code == 1, text
    assert "cannot start: could not open the database" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("taken", ["listen", "public_listen", "metrics_listen"])
async def test_a_listener_address_in_use_is_one_clear_line_naming_the_key_and_exit_2_before_the_database(
    tmp_path: Path, taken: str
) -> None:
    with PortReservation.acquire() as listen, PortReservation.acquire() as public, \
            PortReservation.acquire() as metrics, socket.socket() as squatter:
        ports = {"listen": listen.port, "public_listen": public.port, "metrics_listen": metrics.port}
        squatter.bind(("127.0.0.1", ports[taken]))
        squatter.listen()
        database = tmp_path / "bridge.db"
        config = tmp_path / "config.yaml"
        config.write_text(
            "homeserver: {url: 'http://127.0.0.1:9', server_name: localhost}\n"
            "appservice: {" + ", ".join(f"{key}: {{port: {port}}}" for key, port in ports.items()) + "}\n"
            f"database: {{url: 'sqlite+aiosqlite:///{database}'}}\n"
        )
        code, text = await run_until_exit(config)
    assert code == 2, text
    assert f"cannot start: appservice.{taken}: cannot listen on 127.0.0.1:{ports[taken]}" in text
    assert "give each listener a free port" in text  # the fix
    assert [line for line in text.splitlines() if "ERROR" in line] == [
        line for line in text.splitlines() if "cannot listen" in line
    ]  # one line
    assert "Traceback" not in text
    assert not database.exists()  # refused before the database was touched


def sqlite_config(directory: Path, listen: int, metrics: int) -> Path:
    """A config in ``directory`` whose database is the relative SQLite path ``bridge.db``."""
    directory.mkdir()
    config = directory / "config.yaml"
    config.write_text(
        "homeserver: {url: 'http://127.0.0.1:9', server_name: localhost}\n"
        f"appservice: {{listen: {{port: {listen}}}, metrics_listen: {{port: {metrics}}}}}\n"
        "database: {url: 'sqlite+aiosqlite:///bridge.db'}\n"
    )
    return config


async def test_a_relative_sqlite_path_is_next_to_the_config_whatever_the_working_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with PortReservation.acquire() as listen, PortReservation.acquire() as metrics:
        config = sqlite_config(tmp_path / "etc", listen.port, metrics.port)
        bridge = BridgeProcess(config, env=TOKENS, cwd=elsewhere, log_path=tmp_path / "bridge.log")
        try:
            await bridge.start_ready()
        finally:
            await bridge.stop()
    assert (tmp_path / "etc" / "bridge.db").exists()
    assert not (elsewhere / "bridge.db").exists()
    assert f"database: SQLite file {tmp_path / 'etc' / 'bridge.db'}" in bridge.log_tail(200)  # absolute


async def test_a_database_only_at_the_old_working_directory_place_stops_the_start_with_the_move(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "bridge.db").write_bytes(b"the admin's data")
    with PortReservation.acquire() as listen, PortReservation.acquire() as metrics:
        config = sqlite_config(tmp_path / "etc", listen.port, metrics.port)
        code, text = await run_until_exit(config, cwd=workdir)
    assert code == 2, text
    assert f"mv {workdir / 'bridge.db'} {tmp_path / 'etc' / 'bridge.db'}" in text
    assert "Traceback" not in text
    assert not (tmp_path / "etc" / "bridge.db").exists()  # no empty database started beside it
    assert (workdir / "bridge.db").read_bytes() == b"the admin's data"
