"""Real IRC servers (InspIRCd, ngIRCd) in subprocesses, configured for tests.

Both are Debian packages (``scripts/setup`` installs them). Their configs are written here from
the settings measured in the harness notes, never copied from a machine-local folder: one listener
on 127.0.0.1 at a reserved free port (:class:`~tests.servers.ports.PortReservation`), no DNS or
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
:func:`~tests.servers.bridge_process.spawn`), so it never outlives the session.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import tempfile
import time
from pathlib import Path

from tests.servers.bridge_process import ReservedPortServer, log_tail
from tests.servers.ports import PortReservation

_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def find_binary(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories (not on a non-root user's PATH on Debian)."""
    return shutil.which(name) or shutil.which(name, path=_SBIN_PATH)


class IrcdStartError(RuntimeError):
    """The IRC server exited, its port was taken, or it did not welcome a client in time."""


class IrcdMissing(IrcdStartError):
    """The server's binary is not installed."""


def probe_registration(host: str, port: int, nick: str, timeout_s: float) -> str | None:
    """Register a throw-away client; None once the server sent 001, else why not (for retrying)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        return f"connect: {exc!r}"
    with sock:
        end = time.monotonic() + timeout_s
        try:
            sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :harness probe\r\n".encode())
            buf = b""
            while (remaining := end - time.monotonic()) > 0:
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    return f"closed before 001 (got {buf[-300:]!r})"
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    words = raw.rstrip(b"\r").split(b" ")
                    if words[0] == b"PING":
                        sock.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
                    elif len(words) > 1 and words[1] == b"001":
                        with contextlib.suppress(OSError):
                            sock.sendall(b"QUIT :probe done\r\n")
                        return None
                    elif words[0] == b"ERROR":
                        return f"server said {raw!r}"
            return f"no 001 within {timeout_s} s (got {buf[-300:]!r})"
        except OSError as exc:
            return f"during registration: {exc!r}"


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


# Connect-class limits. Off: InspIRCd disconnects a client after ~9 fast lines with its defaults
# ("RecvQ exceeded"), far too few for tests that push hundreds of lines. On: InspIRCd 3's defaults.
_INSPIRCD_FLOOD_OFF = (
    'hardsendq="64M" softsendq="16M" recvq="16M" threshold="1000000" commandrate="100000000" fakelag="no"'
)
_INSPIRCD_FLOOD_ON = 'hardsendq="1M" softsendq="10240" recvq="10240" threshold="10" commandrate="1000" fakelag="yes"'

_INSPIRCD_MODULES = (
    "cap",
    "ircv3",
    "ircv3_accounttag",
    "ircv3_batch",
    "ircv3_capnotify",
    "ircv3_chghost",
    "ircv3_ctctags",
    "ircv3_echomessage",
    "ircv3_invitenotify",
    "ircv3_labeledresponse",
    "ircv3_msgid",
    "ircv3_servertime",
    "namesx",
    "uhnames",
    "setname",
    "monitor",
    # The account API ircv3_accounttag reads; no services are linked, so no one is logged in.
    "services_account",
)


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
        d = self.data_dir
        motd = d / "motd.txt"
        motd.write_text("bridgekit test server\n")
        flood = _INSPIRCD_FLOOD_ON if self.flood_protection else _INSPIRCD_FLOOD_OFF
        modules = "\n".join(f'<module name="{name}">' for name in _INSPIRCD_MODULES)
        # NB: InspIRCd's config comments are '#'; '<!-- -->' breaks the parser.
        return f"""\
# Written by tests/servers/ircd.py (bridgekit test harness).
<config format="xml">
<path configdir="{d}" datadir="{d}" logdir="{d}" runtimedir="{d}">
<server name="{self.server_name}" description="bridgekit test ircd" network="BridgekitTest">
<admin name="harness" nick="harness" email="harness@example.test">
<bind address="{self.host}" port="{self.port}" type="clients">
<connect name="main" allow="*" maxchans="1000" timeout="20" pingfreq="2m"
         {flood}
         localmax="5000" globalmax="5000" resolvehostnames="no" useident="no" limit="5000">
<files motd="{motd}">
<pid file="{d / 'inspircd.pid'}">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{self.ircd_log_path}">
<dns timeout="3">
# defaultmodes "o": whoever creates a channel gets op (InspIRCd 3 takes prefix modes from here).
<options prefixquit="" syntaxhints="no" announcets="yes" hostintopic="yes" defaultmodes="not">
<security announceinvites="dynamic" hideulines="no" flatlinks="no" hidewhois="" hidebans="no" hidekills=""
          hidesplits="no" maxtargets="100" customversion="" operspywhois="no" restrictbannedusers="no"
          genericoper="no" userstats="Pu">
<performance clonesonconnect="no" timeskipwarn="2s" quietbursts="yes" nouserdns="yes" softlimit="10000">
# maxline 4096: the test server must accept over-long lines so tests can catch them.
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255" maxtopic="307"
        maxkick="255" maxreal="128" maxaway="200" maxline="4096">
<oper name="oper" password="operpw" host="*@*" type="NetAdmin">
<type name="NetAdmin" classes="all" vhost="netadmin.localhost">
<class name="all" commands="*" privs="*" usermodes="*" chanmodes="*">
{modules}
<ircv3 accountnotify="yes" awaynotify="yes" extendedjoin="yes">
"""


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
        include_dir.mkdir(exist_ok=True)
        # MaxPenaltyTime: -1 (the default) enforces the command penalty, 0 turns it off.
        penalty = -1 if self.flood_protection else 0
        # No PidFile: `-n` keeps ngIRCd in the foreground, so the spawned PID is the server's.
        return f"""\
# Written by tests/servers/ircd.py (bridgekit test harness).
[Global]
\tName = {self.server_name}
\tInfo = bridgekit test ircd
\tListen = {self.host}
\tPorts = {self.port}
\tMotdPhrase = bridgekit test server
\tHelpFile = /dev/null
\tAdminInfo1 = bridgekit test harness
\tAdminEMail = harness@example.test
[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxNickLength = 30
\tMaxListSize = 1000
\tPingTimeout = 120
\tPongTimeout = 60
\tConnectRetry = 60
\tIdleTimeout = 0
\tMaxPenaltyTime = {penalty}
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
\tAllowRemoteOper = no
\tOperCanUseMode = yes
\tRequireAuthPing = no
\tIncludeDir = {include_dir}
[SSL]
[Operator]
\tName = oper
\tPassword = operpw
"""
