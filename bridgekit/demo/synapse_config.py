"""A local Synapse's files: homeserver.yaml, its log config and signing key.

One definition for the demo (``scripts/demo``) and the test harness (``bridgekit/testing/synapse.py``):
a listener on 127.0.0.1 only, SQLite, a registration shared secret for the admin API (the demo
and the tests register their users with it), every ``rc_*`` limit lifted (``per_second: 0``
would mean "never refills", not "unlimited"), presence and URL previews off, no federation, and
the appservice registrations given. Registrations are read at start-up only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

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


def homeserver_config(
    data_dir: Path,
    *,
    server_name: str,
    port: int,
    shared_secret: str,
    macaroon_secret: str,
    form_secret: str,
    appservice_registrations: Sequence[Path] = (),
) -> dict[str, Any]:
    """The homeserver.yaml contents."""
    d = data_dir
    return {
        "server_name": server_name,
        "pid_file": str(d / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                # openid: the federation userinfo endpoint the bridge's provisioning API checks
                # users' OpenID tokens with (nothing else of federation is served).
                "resources": [{"names": ["client", "openid"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
        "log_config": str(d / "log.config.yaml"),
        "media_store_path": str(d / "media_store"),
        "signing_key_path": str(d / f"{server_name}.signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": macaroon_secret,
        "form_secret": form_secret,
        "report_stats": False,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "app_service_config_files": [str(p) for p in appservice_registrations],
        **_lifted_rate_limits(),
    }


def write_homeserver_files(data_dir: Path, config: dict[str, Any], *, server_name: str, log_level: str) -> Path:
    """Write homeserver.yaml, the log config (to ``homeserver.log``) and, once, the signing key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "log.config.yaml").write_text(yaml.safe_dump(_log_config(data_dir / "homeserver.log", log_level)))
    config_path = data_dir / "homeserver.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    config_path.chmod(0o600)
    key = data_dir / f"{server_name}.signing.key"
    if not key.exists():
        # In-process, as `--generate-keys` would (a Synapse dependency, imported only here): saves
        # ~2.5 s of starting Python and importing Synapse just to write one key.
        from signedjson.key import generate_signing_key, write_signing_keys

        with key.open("w") as out:
            write_signing_keys(out, [generate_signing_key("a_" + secrets.token_hex(2))])
        key.chmod(0o600)
    return config_path
