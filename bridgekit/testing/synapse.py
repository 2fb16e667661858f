"""A real Synapse homeserver in a subprocess, configured for tests.

Its config is written here (the settings measured in the harness notes), never copied from a
machine-local folder: listener on 127.0.0.1 only, SQLite, a registration shared secret for the
admin API, every ``rc_*`` limit lifted (``per_second: 0`` would mean "never refills", not
"unlimited"), presence and URL previews off, and the appservice registrations of the session.
Registrations are read at start-up only, so the session reserves all of them before starting.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from bridgekit.config import BridgeConfig
from bridgekit.demo.ports import PortReservation
from bridgekit.demo.synapse_config import homeserver_config, write_homeserver_files
from bridgekit.registration import build_registration, regex_escape
from bridgekit.testing.bridge_process import ReservedPortServer, log_tail


class SynapseStartError(RuntimeError):
    """Synapse exited or did not answer before the deadline."""


class SynapseServer(ReservedPortServer):
    stop_deadline_s = 20.0
    start_deadline_s = 60.0

    """One Synapse process with its data directory, port and shared secret."""

    def __init__(
        self,
        data_dir: Path,
        *,
        server_name: str = "localhost",
        appservice_registrations: Sequence[Path] = (),
        message_rate: tuple[float, float] | None = None,
        log_level: str = "WARNING",
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        """``message_rate`` = (per_second, burst_count) for ``rc_message``; None lifts it too.
        ``extra_config``: top-level homeserver.yaml keys that replace the harness's (for a test's
        own homeserver, e.g. ``{"presence": {"enabled": True}}``)."""
        self.data_dir = data_dir
        self.server_name = server_name
        self.appservice_registrations = list(appservice_registrations)
        self.message_rate = message_rate
        self.log_level = log_level
        self.extra_config = dict(extra_config or {})
        self.shared_secret = secrets.token_urlsafe(24)
        # Fixed for the object's lifetime so a restart keeps issued tokens valid.
        self._macaroon_secret = secrets.token_urlsafe(32)
        self._form_secret = secrets.token_urlsafe(32)
        self.config_path = data_dir / "homeserver.yaml"
        self.log_path = data_dir / "homeserver.log"
        self.stdout_path = data_dir / "stdout.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The homeserver.yaml contents."""
        cfg = homeserver_config(
            self.data_dir, server_name=self.server_name, port=self.port, shared_secret=self.shared_secret,
            macaroon_secret=self._macaroon_secret, form_secret=self._form_secret,
            appservice_registrations=self.appservice_registrations,
        )
        if self.message_rate is not None:
            per_second, burst = self.message_rate
            cfg["rc_message"] = {"per_second": per_second, "burst_count": burst}
        return {**cfg, **self.extra_config}

    def write_config(self) -> Path:
        """Reserve the port and write homeserver.yaml, the log config and the signing key."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._reservation is None:
            self._reservation = PortReservation.acquire()
        write_homeserver_files(self.data_dir, self.config(), server_name=self.server_name, log_level=self.log_level)
        return self.config_path

    def start(self, deadline_s: float = 60.0) -> None:
        """Start Synapse and return once ``/_matrix/client/versions`` answers."""
        self._refuse_if_running("Synapse")
        self.write_config()
        self._launch(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            log_path=self.stdout_path, cwd=self.data_dir, host="127.0.0.1", deadline_s=deadline_s,
            wait=self._wait_answering, taken=SynapseStartError,
        )

    def _wait_answering(self, end: float) -> None:
        assert self._proc is not None
        last = "no answer"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < end:
                code = self._proc.poll()
                if code is not None:
                    raise SynapseStartError(f"Synapse exited with {code}; {self._tails()}")
                try:
                    if http.get(f"{self.url}/_matrix/client/versions").status_code == 200:
                        return
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise SynapseStartError(f"Synapse did not answer before the deadline ({last}); {self._tails()}")

    def _tails(self) -> str:
        return (
            f"stdout/stderr tail:\n{log_tail(self.stdout_path)}\n"
            f"homeserver.log tail:\n{log_tail(self.log_path)}"
        )


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class AppserviceSlot:
    """One appservice registration reserved for the session, before Synapse starts.

    ``port`` is where the registration's ``url`` points (Synapse pushes transactions there);
    ``bridge_port`` is where the bridge listens. They are the same unless the slot is proxied
    (a :class:`~tests.servers.fault_proxy.FaultProxy` on ``port`` forwarding to ``bridge_port``).
    """

    def __init__(
        self,
        name: str,
        *,
        appservice_id: str,
        prefix: str,
        homeserver_url: str,
        server_name: str,
        rate_limited: bool = False,
        proxied: bool = False,
        connector: str = "example",
        ephemeral: bool = False,
        protocols: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.id = appservice_id
        self.ghost_prefix = prefix
        self.alias_prefix = prefix
        self.bot_localpart = f"{prefix}bot"
        self.homeserver_url = homeserver_url
        self.server_name = server_name
        self.rate_limited = rate_limited
        self.connector = connector
        self.ephemeral = ephemeral
        self.protocols = protocols
        """Third-party protocols Synapse asks this slot about (the IRC connector's ``irc``)."""
        """Synapse pushes typing, receipts and presence to this slot (``receive_ephemeral``)."""
        self.as_token = secrets.token_urlsafe(32)
        self.hs_token = secrets.token_urlsafe(32)
        self._reservations = [PortReservation.acquire()]
        if proxied:
            self._reservations.append(PortReservation.acquire())

    @property
    def port(self) -> int:
        return self._reservations[0].port

    @property
    def bridge_port(self) -> int:
        return self._reservations[-1].port

    @property
    def proxied(self) -> bool:
        return len(self._reservations) > 1

    @property
    def url(self) -> str:
        """The registration's ``url``: what Synapse calls."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @property
    def bot_user_id(self) -> str:
        return f"@{self.bot_localpart}:{self.server_name}"

    def ghost_user_id(self, suffix: str) -> str:
        return f"@{self.ghost_prefix}{suffix}:{self.server_name}"

    def alias(self, suffix: str) -> str:
        return f"#{self.alias_prefix}{suffix}:{self.server_name}"

    @property
    def user_regex(self) -> str:
        return f"@{regex_escape(self.ghost_prefix)}.*:{regex_escape(self.server_name)}"

    @property
    def alias_regex(self) -> str:
        return f"#{regex_escape(self.alias_prefix)}.*:{regex_escape(self.server_name)}"

    def bridge_env(self) -> dict[str, str]:
        """The tokens as environment variables, for configs that leave them out."""
        return {"BRIDGEKIT_AS_TOKEN": self.as_token, "BRIDGEKIT_HS_TOKEN": self.hs_token}

    def bridge_config(
        self,
        database_url: str = "sqlite+aiosqlite:///bridgekit.db",
        *,
        registration: str = "registration.yaml",
        **overrides: Any,
    ) -> dict[str, Any]:
        """The bridge config (as a dict) for this slot; ``overrides`` are deep-merged sections."""
        base: dict[str, Any] = {
            "homeserver": {"url": self.homeserver_url, "server_name": self.server_name},
            "appservice": {
                "id": self.id,
                "listen": {"host": "127.0.0.1", "port": self.bridge_port},
                "address": self.url,
                "registration": registration,
                "bot_localpart": self.bot_localpart,
                "receive_ephemeral": self.ephemeral,
            },
            "database": {"url": database_url},
            "connectors": {
                self.connector: {"ghost_prefix": self.ghost_prefix, "alias_prefix": self.alias_prefix}
            },
        }
        return _deep_merge(base, overrides)

    def registration(self) -> dict[str, Any]:
        """The registration Synapse loads for this slot, built from the slot's bridge config."""
        config = BridgeConfig.model_validate(self.bridge_config())
        reg = build_registration(config, as_token=self.as_token, hs_token=self.hs_token, protocols=self.protocols)
        if reg.get("url") != self.url:
            raise RuntimeError(f"build_registration wrote url {reg.get('url')!r}, slot needs {self.url!r}")
        # build_registration always says false (ghosts must not be throttled); the harness needs
        # one slot that Synapse does rate-limit, to test how the bridge handles 429.
        reg["rate_limited"] = self.rate_limited
        return reg

    def write_registration(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.registration(), sort_keys=False))
        path.chmod(0o600)
        return path

    def write_bridge_config(
        self, path: Path, database_url: str, *, with_registration: bool = True, **overrides: Any
    ) -> Path:
        """Write a config for ``bridgekit run -c path`` that plays this slot.

        The registration (with the tokens) is written next to it as ``{stem}.registration.yaml``;
        with ``with_registration=False`` it is not, and the tokens come from :meth:`bridge_env`.
        """
        reg_path = path.with_name(f"{path.stem}.registration.yaml")
        config = self.bridge_config(database_url, registration=reg_path.name, **overrides)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        if with_registration:
            self.write_registration(reg_path)
        return path

    def release(self) -> None:
        for reservation in self._reservations:
            reservation.release()

    def __repr__(self) -> str:
        return f"AppserviceSlot({self.name!r}, id={self.id!r}, url={self.url!r})"
