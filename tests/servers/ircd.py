"""Real IRC servers (InspIRCd, ngIRCd) in subprocesses, configured for tests.

Both are Debian packages (``scripts/setup`` installs them). Their configs are written here from
the settings measured in the harness notes, never copied from a machine-local folder: one listener
on 127.0.0.1 at a reserved free port (:class:`~bridgekit.demo.ports.PortReservation`), no DNS or
ident look-ups, and flood protection off unless asked for (``flood_protection=True`` gives the
servers' default-like limits, for tests of the bridge's own flood control).

- :class:`InspIRCd` (3.15): the IRCv3 server (message-tags, server-time, echo-message, msgid,
  batch, labeled-response, account-tag, chghost, cap-notify, setname, monitor, multi-prefix,
  userhost-in-names). It accepts lines up to 4096 bytes, so a test sees, and can measure, a line
  longer than 512 bytes instead of the server cutting it. It completes a registration only on its
  once-a-second timer: each client takes up to ~1 s to get 001.
- :class:`NgIRCd` (26): no IRCv3 beyond multi-prefix, but it welcomes a client in milliseconds;
  for tests that need many connections quickly.

A server is started once (``start``), answers a client registration before ``start`` returns,
and is stopped by PID (``stop``). The child gets the death signal of the test runner (see
:func:`~bridgekit.testing.bridge_process.spawn`), so it never outlives the session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

from bridgekit.demo.ircd_config import find_binary, inspircd_config, ngircd_config, probe_registration
from bridgekit.demo.ports import PortReservation
from bridgekit.testing.bridge_process import ReservedPortServer, log_tail


class IrcdStartError(RuntimeError):
    """The IRC server exited, its port was taken, or it did not welcome a client in time."""


class IrcdMissing(IrcdStartError):
    """The server's binary is not installed."""


class _IrcServer(ReservedPortServer):
    stop_deadline_s = 10.0
    start_deadline_s = 30.0

    """What both servers share: data dir, reserved port, spawn, readiness check, stop by PID."""

    binary = ""
    host = "127.0.0.1"
    server_name = "irc.localhost"

    def __init__(self, data_dir: Path, *, flood_protection: bool = False) -> None:
        self.data_dir = data_dir
        self.flood_protection = flood_protection
        self.stdout_path = data_dir / "stdout.log"

    # -- what a server defines ---------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        raise NotImplementedError

    def config_text(self) -> str:
        raise NotImplementedError

    def argv(self, binary: str) -> list[str]:
        raise NotImplementedError

    def _extra_logs(self) -> list[Path]:
        return []

    # -- shared ------------------------------------------------------------------------------
    @classmethod
    def available(cls) -> bool:
        return find_binary(cls.binary) is not None

    def write_config(self) -> Path:
        """Reserve the port (once) and write the config file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._reservation is None:
            self._reservation = PortReservation.acquire(self.host)
        self.config_path.write_text(self.config_text())
        self.config_path.chmod(0o600)
        return self.config_path

    def start(self, deadline_s: float = 30.0) -> None:
        """Start the server and return once a client registration gets 001."""
        self._refuse_if_running(self.binary)
        binary = find_binary(self.binary)
        if binary is None:
            raise IrcdMissing(f"{self.binary} is not installed (run scripts/setup as root)")
        self.write_config()
        self._launch(self.argv(binary), log_path=self.stdout_path, cwd=self.data_dir, host=self.host,
                     deadline_s=deadline_s, wait=self._wait_welcoming, taken=IrcdStartError)

    def _wait_welcoming(self, end: float) -> None:
        assert self._proc is not None
        last = "no answer"
        while (remaining := end - time.monotonic()) > 0:
            code = self._proc.poll()
            if code is not None:
                raise IrcdStartError(f"{self.binary} exited with {code}; {self.log_tail()}")
            last = probe_registration(self.host, self.port, "hprobe", min(remaining, 5.0)) or ""
            if not last:
                if self._proc.poll() is None:
                    return
                # Something else answered on our port and our server died.
                raise IrcdStartError(f"{self.binary} exited with {self._proc.poll()}; {self.log_tail()}")
            time.sleep(0.05)
        raise IrcdStartError(f"{self.binary} did not welcome a client before the deadline ({last}); {self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's output and log files, for failure messages."""
        parts = [f"{self.stdout_path.name} tail:\n{log_tail(self.stdout_path, lines)}"]
        parts += [f"{p.name} tail:\n{log_tail(p, lines)}" for p in self._extra_logs()]
        return "\n".join(parts)

    def __repr__(self) -> str:
        port = self._reservation.port if self._reservation is not None else None
        return f"{type(self).__name__}(port={port}, pid={self.pid})"


class InspIRCd(_IrcServer):
    """InspIRCd 3.15: ``inspircd --nofork --runasroot --config=<data_dir>/inspircd.conf``."""

    binary = "inspircd"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "inspircd.conf"

    @property
    def ircd_log_path(self) -> Path:
        return self.data_dir / "ircd.log"

    def _extra_logs(self) -> list[Path]:
        return [self.ircd_log_path]

    def argv(self, binary: str) -> list[str]:
        return [binary, "--nofork", "--runasroot", f"--config={self.config_path}"]

    def config_text(self) -> str:
        return inspircd_config(self.data_dir, host=self.host, port=self.port, server_name=self.server_name,
                               flood_protection=self.flood_protection)


class LinkedInspIRCd(InspIRCd):
    """An InspIRCd that is one server of a network of several on loopback (``spanningtree``): a
    second listener for servers, and a link block for each peer (:meth:`link_with`). Nothing
    connects by itself: an oper sends ``CONNECT <peer>`` to link and ``SQUIT <peer>`` to split,
    so a test decides when the network splits and when it heals. Users lost in a split QUIT with
    both servers' names as the reason (``hidesplits`` is off)."""

    LINK_PASSWORD = "linkpw"

    def __init__(self, data_dir: Path, *, server_name: str, sid: str, flood_protection: bool = False) -> None:
        super().__init__(data_dir, flood_protection=flood_protection)
        self.server_name = server_name
        self.sid = sid
        """InspIRCd's server ID: a digit and two letters or digits, unique in the network."""
        self._server_reservation: PortReservation | None = None
        self.peers: list[LinkedInspIRCd] = []

    @property
    def server_port(self) -> int:
        if self._server_reservation is None:
            self._server_reservation = PortReservation.acquire(self.host)
        return self._server_reservation.port

    def link_with(self, peer: LinkedInspIRCd) -> None:
        """Both servers get a link block for the other (call before :meth:`start`)."""
        self.peers.append(peer)
        peer.peers.append(self)

    def config_text(self) -> str:
        text = super().config_text().replace("<server name=", f'<server id="{self.sid}" name=', 1)
        links = "\n".join(
            f'<link name="{peer.server_name}" ipaddr="{peer.host}" port="{peer.server_port}" '
            f'allowmask="127.0.0.0/8" timeout="30" sendpass="{self.LINK_PASSWORD}" recvpass="{self.LINK_PASSWORD}">'
            for peer in self.peers
        )
        return (f'{text}<bind address="{self.host}" port="{self.server_port}" type="servers">\n'
                f'<module name="spanningtree">\n{links}\n')

    def stop(self, deadline_s: float | None = None, *, release_port: bool = True) -> int | None:
        try:
            return super().stop(deadline_s, release_port=release_port)
        finally:
            if release_port and self._server_reservation is not None:
                self._server_reservation.release()
                self._server_reservation = None


class NgIRCd(_IrcServer):
    """ngIRCd 26: ``ngircd -n -f ngircd.conf``.

    Started as root, ngIRCd always drops to "nobody", and that credential change clears the death
    signal :func:`spawn` set. So as root it is started as "nobody" through ``setpriv``, which sets
    the death signal again after switching; the config then lives in a directory "nobody" can
    read (the session's tmp dirs are root-only), removed again by :meth:`stop`.
    """

    binary = "ngircd"

    def __init__(self, data_dir: Path, *, flood_protection: bool = False) -> None:
        super().__init__(data_dir, flood_protection=flood_protection)
        self._unprivileged = os.geteuid() == 0 and shutil.which("setpriv") is not None
        self._conf_dir: Path | None = None

    @property
    def config_path(self) -> Path:
        if not self._unprivileged:
            return self.data_dir / "ngircd.conf"
        if self._conf_dir is None:
            self._conf_dir = Path(tempfile.mkdtemp(prefix="bridgekit-ngircd-"))
            self._conf_dir.chmod(0o755)
        return self._conf_dir / "ngircd.conf"

    def write_config(self) -> Path:
        path = super().write_config()
        if self._unprivileged:
            path.chmod(0o644)  # test-only secrets (the oper password)
        return path

    def argv(self, binary: str) -> list[str]:
        command = [binary, "-n", "-f", str(self.config_path)]
        if not self._unprivileged:
            return command
        try:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
        except KeyError:
            uid = gid = 65534
        setpriv = [f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--pdeathsig=TERM"]
        return ["setpriv", *setpriv, *command]

    def stop(self, deadline_s: float | None = None, *, release_port: bool = True) -> int | None:
        try:
            return super().stop(deadline_s, release_port=release_port)
        finally:
            if release_port and self._conf_dir is not None:
                shutil.rmtree(self._conf_dir, ignore_errors=True)
                self._conf_dir = None

    def config_text(self) -> str:
        include_dir = self.config_path.parent / "conf.d"  # empty: keeps /etc/ngircd/conf.d out
        return ngircd_config(include_dir, host=self.host, port=self.port, server_name=self.server_name,
                             flood_protection=self.flood_protection)
