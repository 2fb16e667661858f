"""Local IRC servers' configs (InspIRCd, ngIRCd), for the demo and the test harness.

One listener on 127.0.0.1 at the port given, no DNS or ident look-ups, and flood protection off
unless asked for (``flood_protection=True`` gives the servers' default-like limits). Both servers
are Debian packages; on Debian their binaries are in sbin, not on a non-root user's PATH.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from pathlib import Path

_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def find_binary(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories (not on a non-root user's PATH on Debian)."""
    return shutil.which(name) or shutil.which(name, path=_SBIN_PATH)


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


def inspircd_config(data_dir: Path, *, host: str, port: int, server_name: str, flood_protection: bool = False) -> str:
    """inspircd.conf (InspIRCd 3): writes the MOTD file it names into ``data_dir``."""
    d = data_dir
    motd = d / "motd.txt"
    motd.write_text("bridgekit test server\n")
    flood = _INSPIRCD_FLOOD_ON if flood_protection else _INSPIRCD_FLOOD_OFF
    modules = "\n".join(f'<module name="{name}">' for name in _INSPIRCD_MODULES)
    # NB: InspIRCd's config comments are '#'; '<!-- -->' breaks the parser.
    return f"""\
# Written by bridgekit (bridgekit.demo.ircd_config).
<config format="xml">
<path configdir="{d}" datadir="{d}" logdir="{d}" runtimedir="{d}">
<server name="{server_name}" description="bridgekit test ircd" network="BridgekitTest">
<admin name="harness" nick="harness" email="harness@example.test">
<bind address="{host}" port="{port}" type="clients">
<connect name="main" allow="*" maxchans="1000" timeout="20" pingfreq="2m"
         {flood}
         localmax="5000" globalmax="5000" resolvehostnames="no" useident="no" limit="5000">
<files motd="{motd}">
<pid file="{d / 'inspircd.pid'}">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{d / "ircd.log"}">
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




def ngircd_config(include_dir: Path, *, host: str, port: int, server_name: str, flood_protection: bool = False) -> str:
    """ngircd.conf (ngIRCd 26); ``include_dir`` is made, empty, so /etc/ngircd/conf.d stays out."""
    include_dir.mkdir(exist_ok=True)
    # MaxPenaltyTime: -1 (the default) enforces the command penalty, 0 turns it off.
    penalty = -1 if flood_protection else 0
    # No PidFile: `-n` keeps ngIRCd in the foreground, so the spawned PID is the server's.
    return f"""\
# Written by bridgekit (bridgekit.demo.ircd_config).
[Global]
\tName = {server_name}
\tInfo = bridgekit test ircd
\tListen = {host}
\tPorts = {port}
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
