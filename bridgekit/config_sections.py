"""The framework's own config sections: homeserver, appservice (with its three listeners),
database, inbox, logging, secrets and double puppeting.

Each is a pydantic model of one mapping in the config file; :class:`~bridgekit.config.BridgeConfig`
puts them together with the connectors' sections. Like every section, they keep unknown keys (the
loader warns about them) and are frozen once validated. The ``description`` of each field is the
documentation: the example config and docs/configuration.md are generated from it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The characters of a Matrix user ID localpart (spec appendix "User Identifiers").
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
_LOCALPART_EXPECTED = "expected only a-z, 0-9 and . _ = - / + (a Matrix localpart's characters)"
_URL_EXPECTED = "expected an http:// or https:// URL, e.g. http://127.0.0.1:8008"


def check_localpart(value: str | None) -> str | None:
    """A field validator: the value (a prefix or a localpart) uses only a localpart's characters."""
    if value is not None and not _LOCALPART.fullmatch(value):
        raise ValueError(_LOCALPART_EXPECTED)
    return value


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(_URL_EXPECTED)
    return value


class Section(BaseModel):
    """The base of every section of the config file, the connectors' shared keys included."""

    # Unknown keys are kept on the model (and warned about by the loader), never dropped.
    model_config = ConfigDict(extra="allow", frozen=True)


class HomeserverConfig(Section):
    """How the bridge reaches its homeserver."""

    url: Annotated[
        str, Field(description="Client-Server API base URL the bridge calls, e.g. http://127.0.0.1:8008")
    ] = "http://127.0.0.1:8008"
    server_name: Annotated[
        str, Field(description="The homeserver's server name: the part after ':' in user IDs")
    ] = "localhost"
    timeout_seconds: Annotated[
        float, Field(gt=0, description="Timeout of one request to the homeserver")
    ] = 30.0
    max_retries: Annotated[
        int, Field(ge=0, description="Retries of a request after 429, 5xx or a network error")
    ] = 8

    _check_url = field_validator("url")(_http_url)

    @field_validator("server_name")
    @classmethod
    def _bare_server_name(cls, value: str) -> str:
        # A URL here is the commonest mistake; it would make every namespace regex wrong.
        if not value or any(char in value for char in "/@ ") or value.startswith(":"):
            raise ValueError(
                "expected a bare server name such as example.org (no scheme, path or user)"
            )
        return value


class ListenConfig(Section):
    """The listener the homeserver talks to: /_matrix, and the /health/live and /health/ready probes.

    Keep it on loopback or an internal network."""

    host: Annotated[
        str, Field(description="Address to bind; 127.0.0.1 unless the homeserver is elsewhere")
    ] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, description="Port to bind")] = 29330


class PublicListenConfig(Section):
    """The listener of the connectors' routes (webhooks, IRC links): publish this one only.

    appservice.public_url leads here, through a reverse proxy."""

    host: Annotated[
        str, Field(description="Address to bind; keep 127.0.0.1 with a reverse proxy on this machine")
    ] = "127.0.0.1"
    port: Annotated[
        int | None,
        Field(ge=1, le=65535, description="Port to bind; null: the connectors' routes are served on "
              "appservice.listen (one listener, as before)"),
    ] = None


class MetricsListenConfig(Section):
    """The listener of /metrics, the detailed /health and the probes, for Prometheus and the admin.

    It never falls back to another listener."""

    host: Annotated[
        str, Field(description="Address to bind; 127.0.0.1 unless the scraper is elsewhere")
    ] = "127.0.0.1"
    port: Annotated[
        int | None,
        Field(ge=1, le=65535, description="Port to bind; null: no metrics listener (no /metrics, no /health)"),
    ] = 29331


class AppserviceConfig(Section):
    """The appservice: its identity, its listener and where its registration lives."""

    id: Annotated[
        str, Field(min_length=1, description="Registration ID; never change it once registered")
    ] = "bridgekit"
    listen: ListenConfig = ListenConfig()
    public_listen: PublicListenConfig = PublicListenConfig()
    metrics_listen: MetricsListenConfig = MetricsListenConfig()
    address: Annotated[
        str | None,
        Field(description="URL the homeserver uses to reach this listener (registration 'url'); "
              "defaults to http://{listen.host}:{listen.port}"),
    ] = None
    public_url: Annotated[
        str | None,
        Field(description="URL outside users reach (links, media, webhooks): the reverse proxy in front "
              "of appservice.public_listen (or of appservice.listen when public_listen.port is null)"),
    ] = None
    registration: Annotated[
        str,
        Field(description="Path of the registration file holding as_token and hs_token "
              "(relative paths are relative to the config file)"),
    ] = "registration.yaml"
    bot_localpart: Annotated[
        str, Field(min_length=1, description="Localpart of the bridge bot user")
    ] = "_bridgekit_bot"
    bot_displayname: Annotated[
        str | None, Field(description="Display name of the bridge bot (null leaves it unset)")
    ] = "bridgekit bot"
    max_body_bytes: Annotated[
        int,
        Field(ge=32 * 1024 * 1024,
              description="Largest transaction body accepted (at least 32 MiB: "
              "a refused transaction wedges the homeserver's queue)"),
    ] = 64 * 1024 * 1024
    receive_ephemeral: Annotated[
        bool, Field(description="Ask for typing, receipts and presence")
    ] = False

    _check_urls = field_validator("address", "public_url")(_http_url)
    _check_localpart = field_validator("bot_localpart")(check_localpart)

    @model_validator(mode="after")
    def _listeners_keep_apart(self) -> AppserviceConfig:
        bound = [("listen", self.listen.host, self.listen.port)]
        for key, listener in (("public_listen", self.public_listen), ("metrics_listen", self.metrics_listen)):
            if listener.port is None:
                continue
            for other, host, port in bound:
                if port == listener.port and (host == listener.host or _wildcard(host) or _wildcard(listener.host)):
                    raise ValueError(
                        f"appservice.{key} ({listener.host}:{listener.port}) is the address of appservice.{other}: "
                        f"each listener needs its own port"
                        + (" (set public_listen.port to null to serve the connectors' routes on listen)"
                           if key == "public_listen" else "")
                    )
            bound.append((key, listener.host, listener.port))
        return self

    @property
    def hs_reachable_url(self) -> str:
        """The URL written into the registration for the homeserver to call."""
        if self.address:
            return self.address
        host = self.listen.host
        # An IPv6 literal needs brackets in a URL, or its colons read as the port separator.
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.listen.port}"

    @property
    def listens_on_every_interface(self) -> bool:
        """Whether the listener binds a wildcard address (0.0.0.0 or ::)."""
        return _wildcard(self.listen.host)


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


class DatabaseConfig(Section):
    """Where the bridge keeps its state."""

    url: Annotated[
        str,
        Field(description="SQLAlchemy URL: sqlite+aiosqlite:///path.db (default) or "
              "postgresql+asyncpg://user@host/db for production"),
    ] = "sqlite+aiosqlite:///bridgekit.db"
    pool_size: Annotated[int, Field(ge=1, description="PostgreSQL connection pool size")] = 10


class InboxConfig(Section):
    """The durable inbox of homeserver transactions."""

    retention_hours: Annotated[
        float, Field(gt=0, description="Handled and rejected rows are pruned after this many hours")
    ] = 72.0
    prune_interval_seconds: Annotated[
        float, Field(gt=0, description="How often pruning runs")
    ] = 3600.0
    max_attempts: Annotated[
        int, Field(ge=1, description="Attempts to handle one event before it is marked failed")
    ] = 5
    max_queued_events: Annotated[
        int,
        Field(ge=100, description="Events held in memory for the room workers; more wait in the "
              "database (durable already) and are read back in order as the workers catch up"),
    ] = 10_000


class LoggingConfig(Section):
    """What the bridge logs."""

    level: Annotated[str, Field(description="DEBUG, INFO, WARNING or ERROR")] = "INFO"
    access_log: Annotated[
        bool, Field(description="Log each HTTP request (tokens and secrets redacted)")
    ] = True
    format: Annotated[
        Literal["text", "json"],
        Field(description="text: one readable line per record; json: one JSON object per line, with the "
                          "event and remote IDs the record is about (for log collectors)"),
    ] = "text"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper


class SecretsConfig(Section):
    """Encryption at rest of the credentials users give the bridge (puppet logins)."""

    credentials_key: Annotated[
        str | None,
        Field(description="Key that encrypts stored credentials (make one with 'bridgekit generate-key'). "
              "BRIDGEKIT_CREDENTIALS_KEY or the file BRIDGEKIT_CREDENTIALS_KEY_FILE names win over this. "
              "Without a key, logins are refused", repr=False),
    ] = None
    previous_credentials_keys: Annotated[
        list[str],
        Field(description="Older keys, still accepted for reading while stored credentials move to the new one",
              repr=False),
    ] = []


class ProvisioningConfig(Section):
    """The provisioning HTTP API under /_bridgekit/provision, served with the connectors' routes
    (appservice.public_listen). Off (not mounted: 404) unless a shared secret is set or OpenID is on."""

    shared_secret: Annotated[
        str | None,
        Field(min_length=32, description="Secret of tools and admins ('Authorization: Bearer <secret>', acting as "
              "the user named by ?user_id=). BRIDGEKIT_PROVISIONING_SECRET or the file "
              "BRIDGEKIT_PROVISIONING_SECRET_FILE names win over this. At least 32 characters", repr=False),
    ] = None
    openid: Annotated[
        bool,
        Field(description="Accept Matrix OpenID tokens of this homeserver's users, acting for themselves "
              "(checked against the homeserver's federation userinfo endpoint)"),
    ] = False
    openid_cache_seconds: Annotated[
        float, Field(ge=0, le=3600, description="How long an OpenID token's checked user is remembered"),
    ] = 60.0


class DoublePuppetConfig(Section):
    """Posting a logged-in user's messages from other clients as the user themself."""

    registration: Annotated[
        str | None,
        Field(description="Path of the second, non-exclusive appservice registration that covers this "
              "homeserver's users ('bridgekit generate-registration --double-puppet' writes it). "
              "Without it, such messages come from the user's ghost"),
    ] = None


__all__ = [
    "AppserviceConfig",
    "DatabaseConfig",
    "DoublePuppetConfig",
    "HomeserverConfig",
    "InboxConfig",
    "ListenConfig",
    "LoggingConfig",
    "MetricsListenConfig",
    "ProvisioningConfig",
    "PublicListenConfig",
    "SecretsConfig",
    "Section",
    "check_localpart",
]
