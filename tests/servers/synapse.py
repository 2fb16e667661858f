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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from bridgekit.config import BridgeConfig
from bridgekit.registration import build_registration, regex_escape
from tests.servers.bridge_process import ReservedPortServer, log_tail
from tests.servers.ports import PortReservation

_UNLIMITED = {"per_second": 100000, "burst_count": 100000}


def _lifted_rate_limits() -> dict[str, Any]:
    """Every client-side rate limiter Synapse 1.163 reads, set out of reach."""
    return {
        "rc_message": dict(_UNLIMITED),
        "rc_registration": dict(_UNLIMITED),
        "rc_registration_token_validity": dict(_UNLIMITED),
        "rc_login": {k: dict(_UNLIMITED) for k in ("address", "account", "failed_attempts")},
        "rc_admin_redaction": dict(_UNLIMITED),
        "rc_joins": {"local": dict(_UNLIMITED), "remote": dict(_UNLIMITED)},
        "rc_joins_per_room": dict(_UNLIMITED),
        "rc_invites": {k: dict(_UNLIMITED) for k in ("per_room", "per_user", "per_issuer")},
        "rc_3pid_validation": dict(_UNLIMITED),
        "rc_third_party_invite": dict(_UNLIMITED),
        "rc_media_create": dict(_UNLIMITED),
        "rc_presence": {"per_user": dict(_UNLIMITED)},
        "rc_delayed_event_mgmt": dict(_UNLIMITED),
        "rc_room_creation": dict(_UNLIMITED),
        "rc_reports": dict(_UNLIMITED),
        "rc_user_directory": dict(_UNLIMITED),
        "rc_profile": dict(_UNLIMITED),
        "rc_key_requests": dict(_UNLIMITED),
        "rc_federation": {
            "window_size": 1000,
            "sleep_limit": 100000,
            "sleep_delay": 1,
            "reject_limit": 100000,
            "concurrent": 100000,
        },
    }


def _log_config(log_file: Path, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_file),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


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
    ) -> None:
        """``message_rate`` = (per_second, burst_count) for ``rc_message``; None lifts it too."""
        self.data_dir = data_dir
        self.server_name = server_name
        self.appservice_registrations = list(appservice_registrations)
        self.message_rate = message_rate
        self.log_level = log_level
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
        d = self.data_dir
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(d / "log.config.yaml"),
            "media_store_path": str(d / "media_store"),
            "signing_key_path": str(d / f"{self.server_name}.signing.key"),
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": self._macaroon_secret,
            "form_secret": self._form_secret,
            "report_stats": False,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "app_service_config_files": [str(p) for p in self.appservice_registrations],
            **_lifted_rate_limits(),
        }
        if self.message_rate is not None:
            per_second, burst = self.message_rate
            cfg["rc_message"] = {"per_second": per_second, "burst_count": burst}
        return cfg

    def write_config(self) -> Path:
        """Reserve the port and write homeserver.yaml, the log config and the signing key."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._reservation is None:
            self._reservation = PortReservation.acquire()
        (self.data_dir / "log.config.yaml").write_text(
            yaml.safe_dump(_log_config(self.log_path, self.log_level))
        )
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.config_path.chmod(0o600)
        key = self.data_dir / f"{self.server_name}.signing.key"
        if not key.exists():
            # In-process, as `--generate-keys` would (a Synapse dependency): saves ~2.5 s of
            # starting Python and importing Synapse just to write one key.
            from signedjson.key import generate_signing_key, write_signing_keys

            with key.open("w") as out:
                write_signing_keys(out, [generate_signing_key("a_" + secrets.token_hex(2))])
            key.chmod(0o600)
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
