"""``bridgekit run`` refuses clearly when it cannot start: one line saying why, exit status 1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.servers.bridge_process import bridgekit_command
from tests.servers.ports import PortReservation

pytestmark = pytest.mark.integration


async def test_an_unreachable_database_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    closed = PortReservation.acquire()  # reserved, nobody listens: connections are refused
    config = tmp_path / "config.yaml"
    config.write_text(
        "homeserver: {url: 'http://127.0.0.1:9', server_name: localhost}\n"
        f"database: {{url: 'postgresql+asyncpg://bridge@127.0.0.1:{closed.port}/bridge'}}\n"
    )
    try:
        process = await asyncio.create_subprocess_exec(
            *bridgekit_command(), "run", "-c", str(config),
            env={"BRIDGEKIT_AS_TOKEN": "a" * 20, "BRIDGEKIT_HS_TOKEN": "b" * 20, "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        closed.release()
    text = output.decode()
    assert process.returncode == 1, text
    assert "cannot start: could not open the database" in text
    assert "Traceback" not in text
