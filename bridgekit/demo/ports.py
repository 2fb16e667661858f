"""Free loopback ports that stay reserved until the harness lets them go.

A port found free by binding to port 0 and closing again can be handed to the next program that
binds port 0 before our server binds it. So ports are drawn outside the kernel's ephemeral range
(which port-0 binds and outgoing connections use), checked free by binding, and held with an
advisory lock file so concurrently running test sessions on the same machine never pick the same
port. The lock is released when the reservation is closed or the process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path
from types import TracebackType

# Below the usual Linux ephemeral range (32768-60999) and above well-known service ports.
_LOW_PORT = 20000
_HIGH_PORT = 32000
_ATTEMPTS = 200


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "bridgekit-test-ports"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing is bound to ``host:port`` (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a closed connection lingering in TIME_WAIT will not stop
        # them binding; only a socket that is really bound makes this fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something is listening on ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


class PortReservation:
    """One free loopback port, locked against other harness processes until :meth:`release`."""

    def __init__(self, port: int, lock_fd: int) -> None:
        self.port = port
        self._lock_fd: int | None = lock_fd

    @classmethod
    def acquire(cls, host: str = "127.0.0.1") -> PortReservation:
        """Find a port that is free and not reserved by another harness process."""
        rng = random.Random()
        lock_dir = _lock_dir()
        for _ in range(_ATTEMPTS):
            port = rng.randint(_LOW_PORT, _HIGH_PORT)
            fd = os.open(lock_dir / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if port_is_free(port, host):
                return cls(port, fd)
            os.close(fd)
        raise RuntimeError(f"no free port in {_LOW_PORT}-{_HIGH_PORT} after {_ATTEMPTS} attempts")

    def release(self) -> None:
        """Let other harness processes use the port again (idempotent)."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"PortReservation(port={self.port})"
