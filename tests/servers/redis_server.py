"""A real Redis (``redis-server``, Debian's package) in a subprocess, for the IRC keeper's tests:
one per test session, on a reserved free loopback port, durable the way a keeper's Redis should
be (append-only file, fsync on every write), stopped by PID."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from bridgekit.demo.ports import PortReservation
from bridgekit.testing.bridge_process import ReservedPortServer, log_tail


class RedisStartError(RuntimeError):
    pass


class RedisServer(ReservedPortServer):
    binary = "redis-server"
    host = "127.0.0.1"
    stop_deadline_s = 10.0

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "redis.log"

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.binary) is not None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            str(shutil.which(self.binary)), "--port", str(self.port), "--bind", self.host, "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir), "--daemonize", "no",
        ]

    def reserve_port(self) -> int:
        """Its port, reserved and not yet listened on: a test that starts Redis late knows where."""
        if self._reservation is None:
            self._reservation = PortReservation.acquire(self.host)
        return self._reservation.port

    def start(self, deadline_s: float = 30.0) -> None:
        self._refuse_if_running(self.binary)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.reserve_port()
        self._launch(self.argv(), log_path=self.log_path, cwd=self.data_dir, host=self.host, deadline_s=deadline_s,
                     wait=self._wait_pong, taken=RedisStartError)

    def _wait_pong(self, end: float) -> None:
        assert self._proc is not None
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                raise RedisStartError(f"redis-server exited: {log_tail(self.log_path, 30)}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RedisStartError(f"redis-server did not answer PING in time: {log_tail(self.log_path, 30)}")


__all__ = ["RedisServer", "RedisStartError"]
