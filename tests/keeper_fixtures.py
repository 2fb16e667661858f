"""Fixtures of the IRC connection keeper's tests.

- ``redis_server`` (session): a real :class:`~tests.servers.redis_server.RedisServer`.
- ``redis_url`` (function): a fresh logical database of it (flushed), so tests share nothing.
- ``start_keeper`` (function): ``start_keeper(redis_url, keeper_id, credentials_key=...)`` -> a
  :class:`KeeperProcess` (``python -m bridges.irc.keeper``), killed by PID after the test;
  ``group=..., lease_seconds=...`` make it one of a group of keepers sharing the connections.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from bridgekit.demo.processes import bridge_environment, spawn, terminate
from tests.servers.redis_server import RedisServer

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server is not installed: run scripts/setup test as root (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """A database of its own (Redis has 16; numbers are reused after 15 tests, flushed first)."""
    from redis.asyncio import Redis

    url = f"redis://{redis_server.host}:{redis_server.port}/{next(_databases) % 16}"
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


class KeeperProcess:
    def __init__(self, url: str, keeper_id: str, log_path: Path, connects_per_second: float = 5.0,
                 credentials_key: str | None = None, group: str | None = None, lease_seconds: float = 15.0) -> None:
        self.argv = [sys.executable, "-m", "bridges.irc.keeper", "--redis-url", url, "--keeper-id", keeper_id,
                     "--connects-per-second", str(connects_per_second)]
        if group is not None:
            self.argv += ["--group", group, "--lease-seconds", str(lease_seconds)]
        self.log_path = log_path
        self.env = bridge_environment()
        if credentials_key is not None:  # the bridge's: it opens puppets' sealed logins
            self.env["BRIDGEKIT_CREDENTIALS_KEY"] = credentials_key
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = spawn(self.argv, log_path=self.log_path, env=self.env)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class StartKeeper(Protocol):
    def __call__(self, url: str, keeper_id: str = "main", connects_per_second: float = 5.0,
                 credentials_key: str | None = None, group: str | None = None,
                 lease_seconds: float = 15.0) -> KeeperProcess: ...


@pytest.fixture
async def start_keeper(tmp_path: Path) -> AsyncIterator[StartKeeper]:
    started: list[KeeperProcess] = []

    def start(url: str, keeper_id: str = "main", connects_per_second: float = 5.0,
              credentials_key: str | None = None, group: str | None = None,
              lease_seconds: float = 15.0) -> KeeperProcess:
        keeper = KeeperProcess(url, keeper_id, tmp_path / f"keeper-{len(started)}.log", connects_per_second,
                               credentials_key, group, lease_seconds)
        started.append(keeper)
        keeper.start()
        return keeper

    try:
        yield start
    finally:
        for keeper in started:
            keeper.stop()


__all__ = ["KeeperProcess", "StartKeeper"]
