"""``bridgekit run`` refuses clearly when it cannot start: one line saying why, exit status 1."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bridgekit.demo.ports import PortReservation
from tests.servers.bridge_process import bridgekit_command

pytestmark = pytest.mark.integration


async def run_until_exit(config: Path) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *bridgekit_command(), "run", "-c", str(config),
        env={"BRIDGEKIT_AS_TOKEN": "a" * 20, "BRIDGEKIT_HS_TOKEN": "b" * 20, "PATH": "/usr/bin:/bin"},
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
async def test_a_listener_address_in_use_is_one_clear_line_and_exit_1_before_the_database(
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
    assert code == 1, text
    assert f"cannot start: appservice.{taken}: cannot listen on 127.0.0.1:{ports[taken]}" in text
    assert "Traceback" not in text
    assert not database.exists()  # refused before the database was touched
