"""A bridgekit bridge run as a real subprocess (``bridgekit run -c CONFIG``).

Fault tests kill it mid-stream and start it again, so it has to be a process of its own, not a
task in the test's event loop. Its methods are async: a test may run a fault proxy in its own
event loop between Synapse and the bridge, and a blocking wait would starve that proxy.

The module also holds the small process helpers the Synapse fixture shares (spawn with the death
signal set, stop by PID, tail of a log file).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import yaml

from bridgekit.demo.ports import PortReservation, port_is_free
from bridgekit.demo.processes import bridge_environment, bridgekit_command, log_tail, spawn, terminate
from bridgekit.testing.waiting import eventually

__all__ = ["bridgekit_command", "log_tail", "spawn", "terminate"]  # the harness's servers import them from here too

async def async_wait_exit(proc: subprocess.Popen[bytes], deadline_s: float) -> int | None:
    """Wait without blocking the event loop; None if it is still running at the deadline."""
    try:
        await eventually(lambda: proc.poll() is not None, timeout=deadline_s, what=f"PID {proc.pid} to exit",
                         interval=0.05)
    except AssertionError:
        return None
    return proc.poll()


async def async_terminate(proc: subprocess.Popen[bytes], deadline_s: float = 15.0) -> int:
    """:func:`terminate` for async callers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        code = await async_wait_exit(proc, deadline_s)
        if code is not None:
            return code
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    code = await async_wait_exit(proc, 10.0)
    if code is None:
        raise RuntimeError(f"process {proc.pid} survived SIGKILL")
    return code


class ReservedPortServer:
    """A server child process on a reserved loopback port: stopped by PID, restartable on the
    same port. Subclasses set ``_proc`` in ``start`` and ``_reservation`` before it."""

    _proc: subprocess.Popen[bytes] | None = None
    _reservation: PortReservation | None = None
    stop_deadline_s = 15.0
    start_deadline_s = 30.0
    startup_seconds: float | None = None

    @property
    def port(self) -> int:
        if self._reservation is None:
            raise RuntimeError(f"{type(self).__name__} has no port until start() (or write_config())")
        return self._reservation.port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, deadline_s: float = 30.0) -> None:
        raise NotImplementedError

    def _refuse_if_running(self, name: str) -> None:
        if self.running:
            raise RuntimeError(f"{name} already running as PID {self.pid}")

    def _launch(
        self, argv: list[str], *, log_path: Path, cwd: Path, host: str, deadline_s: float,
        wait: Callable[[float], None], taken: type[Exception],
    ) -> None:
        """Spawn the server on its free reserved port and return once ``wait(end)`` does; a server
        that does not come up is stopped, and a leftover on the port is refused (it would answer
        in its place)."""
        if not port_is_free(self.port, host):
            raise taken(f"port {self.port} is taken (a leftover server?)")
        began = time.monotonic()
        self._proc = spawn(argv, log_path=log_path, cwd=cwd)
        try:
            wait(began + deadline_s)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self, deadline_s: float | None = None, *, release_port: bool = True) -> int | None:
        """SIGTERM by PID, SIGKILL after the deadline; releases the port. Idempotent."""
        code: int | None = None
        try:
            if self._proc is not None:
                code = terminate(self._proc, self.stop_deadline_s if deadline_s is None else deadline_s)
        finally:
            if release_port and self._reservation is not None:
                with contextlib.suppress(Exception):
                    self._reservation.release()
                self._reservation = None
        return code

    def restart(self, deadline_s: float | None = None) -> None:
        """Stop and start on the same port (and data): clients see the server restart."""
        self.stop(release_port=False)
        self.start(self.start_deadline_s if deadline_s is None else deadline_s)


class BridgeNotReady(RuntimeError):
    """The bridge died or did not report ready before the deadline."""


METRICS_PORT_VARIABLE = "BRIDGEKIT_APPSERVICE__METRICS_LISTEN__PORT"


class BridgeProcess:
    """One bridge subprocess; the listeners' ports are read from its config file.

    A config that leaves the metrics listener at its default (a fixed port, 29331) gets a free
    port instead, through the environment, so that bridges of concurrent tests and sessions never
    compete for it; the config file stays as the test wrote it."""

    def __init__(
        self,
        config_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        argv: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.cwd = cwd
        """The working directory (default: the test's own)."""
        self.log_path = log_path or config_path.with_suffix(".log")
        self.argv = argv or [*bridgekit_command(), "run", "-c", str(config_path)]
        # The child gets our environment (PATH, the venv) plus the test's additions, but none of
        # the runner's BRIDGEKIT_* variables: those override config keys and tokens.
        self.env = {**bridge_environment(), **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        appservice = (yaml.safe_load(config_path.read_text()) or {}).get("appservice", {})
        self.port = int(appservice.get("listen", {}).get("port", 29330))
        public = appservice.get("public_listen", {}).get("port")
        self.public_port: int = self.port if public is None else int(public)
        """Where the connectors' routes are: the public listener, else the homeserver's."""
        metrics = appservice.get("metrics_listen", {})
        self._metrics_reservation: PortReservation | None = None
        if "port" not in metrics and METRICS_PORT_VARIABLE not in self.env:
            # Held for the life of this object, so a restart finds the port still ours.
            self._metrics_reservation = PortReservation.acquire()
            self.env[METRICS_PORT_VARIABLE] = str(self._metrics_reservation.port)
        port = self.env.get(METRICS_PORT_VARIABLE, metrics.get("port"))
        self.metrics_port: int | None = None if port in (None, "null") else int(port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def base_url(self) -> str:
        """The homeserver's listener (/_matrix, /health/live, /health/ready)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_base_url(self) -> str:
        """The connectors' routes (webhooks, IRC links, memonet's control API)."""
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def metrics_url(self) -> str:
        """The metrics listener (/metrics, the detailed /health)."""
        if self.metrics_port is None:
            raise RuntimeError("this bridge runs without a metrics listener (metrics_listen.port: null)")
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> None:
        """Spawn the bridge; use :meth:`wait_ready` before relying on it."""
        if self.running:
            raise RuntimeError(f"bridge already running as PID {self.pid}")
        self._proc = spawn(self.argv, log_path=self.log_path, env=self.env, cwd=self.cwd)

    async def wait_ready(self, deadline_s: float = 30.0) -> None:
        """Poll ``/health/ready`` until it answers 200; fail early if the process exits."""
        if self._proc is None:
            raise RuntimeError("bridge not started")
        proc = self._proc
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def ready() -> bool:
                code = proc.poll()
                if code is not None:  # not worth waiting for: raised through eventually() at once
                    raise BridgeNotReady(
                        f"bridge exited with {code} before ready; log tail:\n{log_tail(self.log_path)}"
                    )
                try:
                    resp = await http.get(f"{self.base_url}/health/ready")
                except httpx.TransportError as exc:
                    raise AssertionError(repr(exc)) from None
                assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:200]}"
                return True

            try:
                await eventually(ready, timeout=deadline_s, what="/health/ready to answer 200", interval=0.1)
            except AssertionError as error:
                raise BridgeNotReady(f"{error}; log tail:\n{log_tail(self.log_path)}") from None

    async def start_ready(self, deadline_s: float = 30.0) -> None:
        self.start()
        await self.wait_ready(deadline_s)

    async def kill(self) -> int | None:
        """SIGKILL: the crash case (nothing flushed, no goodbye)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
        return await async_wait_exit(self._proc, 10.0)

    async def stop(self, deadline_s: float = 15.0) -> int | None:
        """SIGTERM (graceful shutdown), SIGKILL if it outlives ``deadline_s``."""
        if self._proc is None:
            return None
        return await async_terminate(self._proc, deadline_s)

    async def restart(self, deadline_s: float = 30.0, *, graceful: bool = True) -> None:
        if graceful:
            await self.stop()
        else:
            await self.kill()
        await self.start_ready(deadline_s)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)
