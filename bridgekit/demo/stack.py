"""The demo's three processes (Synapse, an IRC server, the bridge): their files, started detached
(they outlive ``scripts/demo``), found again by PID on a second start, stopped by PID.

A recorded PID counts as ours only while that process's command line still names our config
file: PIDs are reused, and ``--stop`` must never signal a stranger.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from bridgekit.demo.ircd_config import find_binary, inspircd_config, ngircd_config, probe_registration
from bridgekit.demo.ports import port_is_free
from bridgekit.demo.processes import bridge_environment, log_tail, pid_alive, pid_command_line, spawn, terminate_pid
from bridgekit.demo.state import IRC_NETWORK, SERVER_NAME, DemoState
from bridgekit.demo.synapse_config import homeserver_config, write_homeserver_files

Say = Callable[[str], None]

IRC_SERVERS = ("inspircd", "ngircd")
APT_LINE = "sudo apt-get install --no-install-recommends inspircd"
STOP_ORDER = ("bridge", "ircd", "synapse")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and what to look at."""


class Stack:
    """The files under the state directory and the processes they configure."""

    def __init__(self, state_dir: Path, state: DemoState, say: Say) -> None:
        self.dir = state_dir.resolve()
        self.state = state
        self.say = say
        self.synapse_dir = self.dir / "synapse"
        self.ircd_dir = self.dir / "ircd"
        self.bridge_dir = self.dir / "bridge"
        self.bridge_config = self.bridge_dir / "bridge.yaml"
        self.registration = self.bridge_dir / "registration.yaml"

    # -- which process is ours -------------------------------------------------------------------
    def config_of(self, name: str) -> Path:
        return {
            "synapse": self.synapse_dir / "homeserver.yaml",
            "ircd": self.ircd_dir / f"{self.state.ircd}.conf",
            "bridge": self.bridge_config,
        }[name]

    def running_pid(self, name: str) -> int | None:
        """The PID recorded for ``name`` if that process is alive and still runs our config."""
        pid = self.state.pids.get(name)
        if pid is None or not pid_alive(pid):
            return None
        config = str(self.config_of(name))
        return pid if any(config in arg for arg in pid_command_line(pid)) else None

    def stop_all(self) -> list[str]:
        """Stop every process this demo started, bridge first; returns what was done, per process."""
        report = []
        for name in STOP_ORDER:
            pid = self.running_pid(name)
            if pid is None:
                if name in self.state.pids:
                    report.append(f"{name}: PID {self.state.pids[name]} was no longer running")
            elif terminate_pid(pid):
                report.append(f"{name}: stopped PID {pid}")
            else:
                raise DemoError(f"{name} (PID {pid}) survived SIGKILL")
            self.state.pids.pop(name, None)
        return report

    # -- files -------------------------------------------------------------------------------------
    def write_bridge_files(self, bridgekit: list[str]) -> None:
        """The bridge's config, and its registration made from it by ``bridgekit
        generate-registration`` (which keeps the tokens of an existing one)."""
        s, ports = self.state, self.state.ports
        self.bridge_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "homeserver": {"url": s.homeserver_url, "server_name": SERVER_NAME},
            "appservice": {
                "id": "bridgekit-demo",
                "listen": {"host": "127.0.0.1", "port": ports.bridge},
                "address": f"http://127.0.0.1:{ports.bridge}",
                "public_url": f"http://127.0.0.1:{ports.public}",
                "public_listen": {"host": "127.0.0.1", "port": ports.public},
                "metrics_listen": {"host": "127.0.0.1", "port": ports.metrics},
                "registration": self.registration.name,
                "bot_localpart": "bridgebot",
            },
            "database": {"url": f"sqlite+aiosqlite:///{self.bridge_dir / 'bridge.db'}"},
            "permissions": {s.user_id: "admin", SERVER_NAME: "user"},
            "connectors": {
                IRC_NETWORK: {
                    "factory": "irc",
                    "ghost_prefix": "_irc_",
                    "alias_prefix": f"_irc_{IRC_NETWORK}_",
                    "server": "127.0.0.1",
                    "port": ports.irc,
                    "tls": False,
                    "bot_nick": "bridgebot",
                },
                "webhook": {
                    "ghost_prefix": "_webhook_",
                    "alias_prefix": "_webhook_",
                    "public_url": f"http://127.0.0.1:{ports.public}",
                    "database": f"sqlite+aiosqlite:///{self.bridge_dir / 'webhook.db'}",
                    "secrets_key": self.state.webhook_key,
                },
            },
        }
        self.bridge_config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.bridge_config.chmod(0o600)
        done = subprocess.run(
            [*bridgekit, "generate-registration", "-c", str(self.bridge_config), "-o", str(self.registration)],
            capture_output=True, text=True, env=bridge_environment(), check=False,
        )
        if done.returncode != 0:
            raise DemoError(f"bridgekit generate-registration failed:\n{done.stdout}{done.stderr}")

    # -- processes ---------------------------------------------------------------------------------
    def start_synapse(self) -> None:
        if importlib.util.find_spec("synapse") is None:
            raise DemoError("Synapse is not installed in this Python: run ./scripts/demo, which installs the "
                            "demo extra (or: pip install '.[demo]')")
        s = self.state
        config = homeserver_config(
            self.synapse_dir, server_name=SERVER_NAME, port=s.ports.synapse, shared_secret=s.shared_secret,
            macaroon_secret=s.macaroon_secret, form_secret=s.form_secret, appservice_registrations=[self.registration],
        )
        path = write_homeserver_files(self.synapse_dir, config, server_name=SERVER_NAME, log_level="WARNING")
        log = self.synapse_dir / "stdout.log"
        self._spawn("synapse", [sys.executable, "-m", "synapse.app.homeserver", "-c", str(path)], log, self.synapse_dir)
        url = f"{s.homeserver_url}/_matrix/client/versions"
        self._wait("synapse", lambda: _answers(url), log, deadline_s=180.0,
                   extra_log=self.synapse_dir / "homeserver.log")

    def start_ircd(self) -> None:
        binary = self._ircd_binary()
        s = self.state
        self.ircd_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_of("ircd")
        if s.ircd == "inspircd":
            path.write_text(inspircd_config(self.ircd_dir, host="127.0.0.1", port=s.ports.irc,
                                            server_name="irc.localhost"))
            argv = [binary, "--nofork", f"--config={path}"] + (["--runasroot"] if os.geteuid() == 0 else [])
        else:
            path.write_text(ngircd_config(self.ircd_dir / "conf.d", host="127.0.0.1", port=s.ports.irc,
                                          server_name="irc.localhost"))
            argv = [binary, "-n", "-f", str(path)]
        log = self.ircd_dir / "stdout.log"
        self._spawn("ircd", argv, log, self.ircd_dir)
        self._wait("ircd", lambda: probe_registration("127.0.0.1", s.ports.irc, "demoprobe", 5.0) is None, log,
                   deadline_s=30.0)

    def start_bridge(self, bridgekit: list[str]) -> None:
        log = self.bridge_dir / "bridge.log"
        self._spawn("bridge", [*bridgekit, "run", "-c", str(self.bridge_config)], log, self.bridge_dir,
                    env=bridge_environment())
        url = f"http://127.0.0.1:{self.state.ports.bridge}/health/ready"
        self._wait("bridge", lambda: _answers(url), log, deadline_s=60.0)

    def _ircd_binary(self) -> str:
        for name in ([self.state.ircd] if self.state.ircd else []) + list(IRC_SERVERS):
            binary = find_binary(name)
            if binary is not None:
                self.state.ircd = name
                return binary
        raise DemoError(f"no IRC server is installed (InspIRCd or ngIRCd); run:\n  {APT_LINE}")

    def _spawn(self, name: str, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        ports = self.state.ports
        wanted = {"synapse": [ports.synapse], "ircd": [ports.irc],
                  "bridge": [ports.bridge, ports.public, ports.metrics]}[name]
        for port in wanted:
            # The ports were free when the state was made; another program may have one now.
            if not port_is_free(port):
                raise DemoError(
                    f"port {port}, which {name} uses (see {self.dir / 'state.json'}), is taken by another "
                    f"program. Stop that program, or start afresh: ./scripts/demo --stop && rm -rf {self.dir}"
                )
        proc = spawn(argv, log_path=log, cwd=cwd, env=env, die_with_parent=False)
        self.state.pids[name] = proc.pid

    def _wait(self, name: str, ready: Callable[[], bool], log: Path, *, deadline_s: float,
              extra_log: Path | None = None) -> None:
        """Poll ``ready`` until it holds, printing a dot a second; fail if the process exits."""
        pid = self.state.pids[name]
        began = time.monotonic()
        next_dot = began + 1.0
        while not ready():
            if not pid_alive(pid):
                tails = log_tail(log, 30) + (f"\n{extra_log.name}:\n{log_tail(extra_log, 30)}" if extra_log else "")
                raise DemoError(f"{name} exited before it was ready; its log ({log}):\n{tails}")
            if time.monotonic() - began > deadline_s:
                raise DemoError(f"{name} was not ready after {deadline_s:.0f} s; its log: {log}")
            if time.monotonic() >= next_dot:
                self.say(".")
                next_dot += 1.0
            time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False
