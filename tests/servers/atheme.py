"""IRC services for the puppeted-account tests: Atheme linked to InspIRCd, in subprocesses.

- :class:`ServicesIRCd`: InspIRCd (the same test config as :class:`~tests.servers.ircd.InspIRCd`)
  plus a server-to-server port and the modules a services link needs. With ``sasl=True`` it
  offers the ``sasl`` capability (SASL PLAIN through Atheme's SaslServ); with ``sasl=False`` it
  is a leaf linked to the hub whose ``sasl`` target is a server that never exists, so InspIRCd
  hides the capability (it never offers SASL while the target is not linked): a network where
  NickServ answers but SASL is not offered, with the same accounts.
- :class:`Atheme`: Atheme 7 (NickServ, SaslServ) linked to the hub's server port. It listens on
  no port of its own; it is ready once NickServ answers a WHOIS on the hub, and stopped by PID.
- :func:`register_account`: ``NickServ REGISTER`` from a plain client (e-mail at example.test:
  Atheme refuses addresses at localhost).

Configs are written here, from the settings measured in the harness notes (never read from a
machine-local folder). Debian's package is ``atheme-services`` (``scripts/setup`` installs it).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from pathlib import Path

from bridgekit.demo.ircd_config import find_binary
from bridgekit.demo.ports import PortReservation
from bridgekit.testing.bridge_process import ReservedPortServer, log_tail
from tests.servers.ircd import InspIRCd, IrcdStartError

SERVICES_NAME = "services.localhost"
LINK_PASSWORD = "linkpw-test-only"
HUB_NAME = "irc.localhost"
LEAF_NAME = "nosasl.localhost"

# The modules a services link needs (InspIRCd 3): both servers load the same list, so the link
# between hub and leaf never fails on a module mismatch; only the leaf's SASL target differs.
_LINK_MODULES = ("sasl", "spanningtree", "hidechans", "servprotect", "chghost", "chgident", "chgname", "sajoin",
                 "sapart", "sanick", "svshold", "topiclock")


class ServicesIRCd(InspIRCd):
    """InspIRCd with a server-to-server port: the hub (``sasl=True``, Atheme links to it) or a
    leaf linked to a hub (``uplink=hub``), where SASL is not offered."""

    def __init__(self, data_dir: Path, *, uplink: ServicesIRCd | None = None) -> None:
        super().__init__(data_dir)
        self.uplink = uplink
        self.server_name = HUB_NAME if uplink is None else LEAF_NAME
        self._link: PortReservation | None = None

    @property
    def sasl(self) -> bool:
        return self.uplink is None

    @property
    def link_port(self) -> int:
        """Where other servers (Atheme, the leaf) link to this one."""
        if self._link is None:
            self._link = PortReservation.acquire(self.host)
        return self._link.port

    def config_text(self) -> str:
        modules = "\n".join(f'<module name="{name}">' for name in _LINK_MODULES)
        # The leaf points SASL at a server that is never linked: InspIRCd then hides the cap.
        target = SERVICES_NAME if self.sasl else "nowhere.localhost"
        if self.uplink is None:
            links = f"""\
<link name="{SERVICES_NAME}" ipaddr="{self.host}" port="{self.link_port}" allowmask="127.0.0.0/8"
      sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}" hidden="no">
<link name="{LEAF_NAME}" ipaddr="{self.host}" port="1" allowmask="127.0.0.0/8"
      sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}" hidden="no">
<uline server="{SERVICES_NAME}" silent="yes">"""
        else:
            links = f"""\
<link name="{HUB_NAME}" ipaddr="{self.host}" port="{self.uplink.link_port}" allowmask="127.0.0.0/8"
      sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}" hidden="no">
<autoconnect period="1" server="{HUB_NAME}">
<uline server="{SERVICES_NAME}" silent="yes">"""
        return f"""{super().config_text()}
# ---- services link (tests/servers/atheme.py) ----
{modules}
<sasl target="{target}" requiressl="no">
<bind address="{self.host}" port="{self.link_port}" type="servers">
{links}
"""

    def stop(self, deadline_s: float | None = None, *, release_port: bool = True) -> int | None:
        try:
            return super().stop(deadline_s, release_port=release_port)
        finally:
            if release_port and self._link is not None:
                with contextlib.suppress(Exception):
                    self._link.release()
                self._link = None


def atheme_config(data_dir: Path, *, uplink_port: int) -> str:
    """atheme.conf (Atheme 7): NickServ accounts (``SET PASSWORD`` too) and SaslServ PLAIN, linked as
    services.localhost."""
    return f"""\
/* Written by tests/servers/atheme.py */
loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/info";
loadmodule "modules/nickserv/help";
loadmodule "modules/nickserv/set_core";
loadmodule "modules/nickserv/set_password";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";
serverinfo {{
\tname = "{SERVICES_NAME}";
\tdesc = "Atheme IRC Services";
\tnumeric = "00A";
\trecontime = 1;
\tnetname = "BridgekitTest";
\thidehostsuffix = "users.test";
\tadminname = "harness";
\tadminemail = "harness@example.test";
\tregisteremail = "noreply@example.test";
\tmta = "/bin/true";
\tloglevel = {{ error; info; admin; network; }};
\tmaxlogins = 50;
\tmaxusers = 50;
\tmdlimit = 30;
\temaillimit = 10;
\temailtime = 300;
\tauth = none;
\tcasemapping = rfc1459;
}};
uplink "{HUB_NAME}" {{
\thost = "127.0.0.1";
\tport = {uplink_port};
\tsend_password = "{LINK_PASSWORD}";
\treceive_password = "{LINK_PASSWORD}";
}};
nickserv {{ nick = "NickServ"; user = "NickServ"; host = "{SERVICES_NAME}"; real = "Nickname Services"; }};
saslserv {{ nick = "SaslServ"; user = "SaslServ"; host = "{SERVICES_NAME}"; real = "SASL Authentication Agent"; }};
general {{
\tuflags = {{ hidemail; }};
\tflood_msgs = 0;
\tflood_time = 10;
\tratelimit_uses = 0;
\tratelimit_period = 60;
\tkline_time = 7;
\tcommit_interval = 5;
\tuplink_sendq_limit = 1048576;
\tlanguage = "en";
\timmune_level = immune;
}};
logfile "{data_dir / 'atheme.log'}" {{ error; info; admin; network; }};
"""


class Atheme(ReservedPortServer):
    """``atheme-services -n -c atheme.conf -D <data_dir>``, linked to ``hub``; ready once NickServ
    is seen from ``hub`` (and from every server in ``also_on``)."""

    binary = "atheme-services"
    stop_deadline_s = 10.0

    def __init__(self, data_dir: Path, hub: ServicesIRCd) -> None:
        self.data_dir = data_dir
        self.hub = hub
        self.stdout_path = data_dir / "stdout.log"

    @classmethod
    def available(cls) -> bool:
        return find_binary(cls.binary) is not None

    def start(self, deadline_s: float = 30.0) -> None:
        self._refuse_if_running(self.binary)
        binary = find_binary(self.binary)
        if binary is None:
            raise IrcdStartError("atheme-services is not installed (run scripts/setup as root)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "atheme.conf"
        config.write_text(atheme_config(self.data_dir, uplink_port=self.hub.link_port))
        config.chmod(0o600)
        argv = [binary, "-n", "-c", str(config), "-D", str(self.data_dir), "-l", str(self.data_dir / "atheme.log"),
                "-p", str(self.data_dir / "atheme.pid")]
        # Atheme binds no port: the reservation is only there because the base class stops by it.
        self._reservation = PortReservation.acquire(self.hub.host)
        self._launch(argv, log_path=self.stdout_path, cwd=self.data_dir, host=self.hub.host, deadline_s=deadline_s,
                     wait=lambda end: wait_for_services(self.hub, end, self), taken=IrcdStartError)

    def log_tail(self, lines: int = 60) -> str:
        return f"atheme stdout tail:\n{log_tail(self.stdout_path, lines)}"


def wait_for_services(server: InspIRCd, end: float, atheme: Atheme) -> None:
    """Return once a client of ``server`` sees NickServ (Atheme linked, and the server with it)."""
    last = "no answer"
    while time.monotonic() < end:
        if atheme.running is False and atheme.pid is not None:
            raise IrcdStartError(f"atheme-services exited; {atheme.log_tail()}")
        last = _whois_nickserv(server.host, server.port, min(5.0, max(end - time.monotonic(), 0.5)))
        if last == "":
            return
        time.sleep(0.2)
    raise IrcdStartError(f"NickServ not seen on {server.server_name} in time ({last}); {atheme.log_tail()}")


def _whois_nickserv(host: str, port: int, timeout_s: float) -> str:
    """'' once ``WHOIS NickServ`` answers 311 on ``host:port``, else what happened."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        return f"connect: {exc!r}"
    with sock:
        end = time.monotonic() + timeout_s
        buf = b""
        try:
            probe = f"svcp{secrets.token_hex(3)}".encode()
            sock.sendall(b"NICK " + probe + b"\r\nUSER " + probe + b" 0 * :services probe\r\n")
            while (remaining := end - time.monotonic()) > 0:
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    return f"closed ({buf[-200:]!r})"
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for raw in complete:
                    words = raw.rstrip(b"\r").split(b" ")
                    if words[0] == b"PING":
                        sock.sendall(b"PONG " + b" ".join(words[1:]) + b"\r\n")
                    elif len(words) > 1 and words[1] == b"001":
                        sock.sendall(b"WHOIS NickServ\r\n")
                    elif len(words) > 1 and words[1] == b"311":
                        sock.sendall(b"QUIT :probe done\r\n")
                        return ""
                    elif len(words) > 1 and words[1] == b"401":
                        return "NickServ not on the network yet"
            return "no answer in time"
        except OSError as exc:
            return f"probe: {exc!r}"


__all__ = ["Atheme", "ServicesIRCd", "atheme_config", "wait_for_services"]
