"""Typed configuration: the YAML file an admin writes, validated into pydantic models.

The file is read, never rewritten. Unknown keys are warned about (by :mod:`bridgekit.config_loader`)
and kept, never silently dropped. Every connector has its own section under ``connectors:``, which
the connector validates with a model of its own; the core only reads the keys every connector
shares (whether it is enabled and the prefixes its ghosts and aliases use).

Secrets (the appservice tokens) do not live here: the config names the registration file, and the
tokens are read from there or from the environment, so they exist in one place only.

The schema also describes itself (:func:`describe_expected`, :func:`iter_keys`), so error messages,
the example config and the reference documentation are all derived from these models.
"""

from __future__ import annotations

import ipaddress
import re
import types
from collections.abc import Iterator
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

# The characters of a Matrix user ID localpart (spec appendix "User Identifiers").
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
_CONNECTOR_NAME = re.compile(r"[a-z0-9-]+")
_LOCALPART_EXPECTED = "expected only a-z, 0-9 and . _ = - / + (a Matrix localpart's characters)"
_URL_EXPECTED = "expected an http:// or https:// URL, e.g. http://127.0.0.1:8008"


def _localpart(value: str | None) -> str | None:
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


class _Section(BaseModel):
    # Unknown keys are kept on the model (and warned about by the loader), never dropped.
    model_config = ConfigDict(extra="allow", frozen=True)


class HomeserverConfig(_Section):
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


class ListenConfig(_Section):
    """The listener the homeserver talks to: /_matrix, and the /health/live and /health/ready probes.

    Keep it on loopback or an internal network."""

    host: Annotated[
        str, Field(description="Address to bind; 127.0.0.1 unless the homeserver is elsewhere")
    ] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535, description="Port to bind")] = 29330


class PublicListenConfig(_Section):
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


class MetricsListenConfig(_Section):
    """The listener of /metrics, the detailed /health and the probes, for Prometheus and the admin.

    It never falls back to another listener."""

    host: Annotated[
        str, Field(description="Address to bind; 127.0.0.1 unless the scraper is elsewhere")
    ] = "127.0.0.1"
    port: Annotated[
        int | None,
        Field(ge=1, le=65535, description="Port to bind; null: no metrics listener (no /metrics, no /health)"),
    ] = 29331


class AppserviceConfig(_Section):
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
    _check_localpart = field_validator("bot_localpart")(_localpart)

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


class DatabaseConfig(_Section):
    """Where the bridge keeps its state."""

    url: Annotated[
        str,
        Field(description="SQLAlchemy URL: sqlite+aiosqlite:///path.db (default) or "
              "postgresql+asyncpg://user@host/db for production"),
    ] = "sqlite+aiosqlite:///bridgekit.db"
    pool_size: Annotated[int, Field(ge=1, description="PostgreSQL connection pool size")] = 10


class InboxConfig(_Section):
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


class LoggingConfig(_Section):
    """What the bridge logs."""

    level: Annotated[str, Field(description="DEBUG, INFO, WARNING or ERROR")] = "INFO"
    access_log: Annotated[
        bool, Field(description="Log each HTTP request (tokens and secrets redacted)")
    ] = True

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper


class SecretsConfig(_Section):
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


class DoublePuppetConfig(_Section):
    """Posting a logged-in user's messages from other clients as the user themself."""

    registration: Annotated[
        str | None,
        Field(description="Path of the second, non-exclusive appservice registration that covers this "
              "homeserver's users ('bridgekit generate-registration --double-puppet' writes it). "
              "Without it, such messages come from the user's ghost"),
    ] = None


class ConnectorSection(_Section):
    """The keys every connector section shares; the rest belongs to the connector's own model."""

    enabled: Annotated[
        bool, Field(description="Whether this connector runs (and has namespaces)")
    ] = True
    ghost_prefix: Annotated[
        str | None,
        Field(description="Localpart prefix of this connector's ghosts; defaults to _{name}_ "
              "(underscore first, as the spec recommends for exclusive namespaces)"),
    ] = None
    alias_prefix: Annotated[
        str | None,
        Field(description="Alias localpart prefix of this connector's portals; "
              "defaults to _{name}_"),
    ] = None
    virtual_idle_minutes: Annotated[
        float,
        Field(gt=0, description="A Matrix user's virtual identity on the network is closed after this "
              "long without a message (and made again when they speak)"),
    ] = 60.0

    _check_prefixes = field_validator("ghost_prefix", "alias_prefix")(_localpart)

    def ghost_prefix_for(self, name: str) -> str:
        return self.ghost_prefix if self.ghost_prefix is not None else f"_{name}_"

    def alias_prefix_for(self, name: str) -> str:
        return self.alias_prefix if self.alias_prefix is not None else f"_{name}_"

    def settings(self) -> dict[str, Any]:
        """The connector-specific keys (all but the shared ones), for the connector's model."""
        return dict(self.model_extra or {})


class BridgeConfig(_Section):
    """The whole config file."""

    homeserver: HomeserverConfig = HomeserverConfig()
    appservice: AppserviceConfig = AppserviceConfig()
    database: DatabaseConfig = DatabaseConfig()
    inbox: InboxConfig = InboxConfig()
    logging: LoggingConfig = LoggingConfig()
    secrets: SecretsConfig = SecretsConfig()
    double_puppet: DoublePuppetConfig = DoublePuppetConfig()
    permissions: dict[str, str] = Field(
        default_factory=dict,
        description="Who may use the bridge: keys are a user ID, a server name or '*', values relay, "
        "user, admin or none; the most specific rule wins. Empty: this homeserver's users are "
        "'user' and everyone else 'relay'",
    )
    room_admin_level: int | str = Field(
        default="m.room.power_levels",
        description="The power level in a room that commands changing that room need (relay on|off, "
        "a connector's room settings such as webhooks), besides the bridge permission level: an "
        "integer, or an event type meaning the level needed to send that state event in the room. "
        "The default follows each room's own admins",
    )
    connectors: dict[str, ConnectorSection] = Field(
        default_factory=dict,
        description="One section per connector (network), named after it. Keys other than enabled, "
        "ghost_prefix and alias_prefix belong to the connector: see its documentation",
    )

    @field_validator("room_admin_level")
    @classmethod
    def _level_or_event_type(cls, value: int | str) -> int | str:
        # Environment overrides of string-or-integer keys arrive as text: "100" is a level.
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("expected a power level (an integer) or an event type such as m.room.power_levels")
        return value

    @property
    def bot_user_id(self) -> str:
        return f"@{self.appservice.bot_localpart}:{self.homeserver.server_name}"

    def enabled_connectors(self) -> dict[str, ConnectorSection]:
        """The connectors that run, in config order."""
        return {name: section for name, section in self.connectors.items() if section.enabled}

    @model_validator(mode="after")
    def _connectors_keep_apart(self) -> BridgeConfig:
        for name in self.connectors:
            if not _CONNECTOR_NAME.fullmatch(name):
                raise ValueError(
                    f"connectors.{name}: a connector name is lower-case letters, digits and '-' (it is part "
                    "of every ghost's ID, where '_' separates it from the remote id)"
                )
        # Overlapping prefixes would give two connectors the same ghost or alias: ambiguous routing.
        for kind in ("ghost_prefix", "alias_prefix"):
            _refuse_overlap(kind, self.enabled_connectors())
        return self


def _refuse_overlap(kind: str, connectors: dict[str, ConnectorSection]) -> None:
    # A ghost's localpart is {ghost_prefix}{connector name}_{remote id} (naming.py) and names
    # never contain '_': connectors may share a ghost prefix (several IRC networks under _irc_),
    # and only the whole namespace {prefix}{name}_ must not overlap another's.
    prefixes = {
        name: f"{section.ghost_prefix_for(name)}{name}_" if kind == "ghost_prefix"
        else section.alias_prefix_for(name)
        for name, section in connectors.items()
    }
    for first, first_prefix in prefixes.items():
        for second, second_prefix in prefixes.items():
            if first != second and second_prefix.startswith(first_prefix):
                raise ValueError(
                    f"connectors.{first}.{kind} {first_prefix!r} also covers "
                    f"connectors.{second}.{kind} {second_prefix!r}: give each enabled connector "
                    "a prefix that is not the start of another's"
                )


class AppserviceTokens(BaseModel):
    """The two secrets of a registration, read from the registration file or the environment."""

    model_config = ConfigDict(frozen=True)

    as_token: str = Field(min_length=16, repr=False)
    hs_token: str = Field(min_length=16, repr=False)


# --- the schema describing itself -------------------------------------------------------------


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a section-typed annotation (``ListenConfig``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def describe_expected(field: FieldInfo) -> str:
    """What a field accepts, in words: 'an integer between 1 and 65535'."""
    return _describe_type(field.annotation, field.metadata)


def _describe_type(annotation: Any, metadata: list[Any]) -> str:
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        described = [_describe_type(arg, metadata) for arg in args if arg is not type(None)]
        suffix = " or null" if type(None) in args else ""
        return " or ".join(described) + suffix
    if get_origin(annotation) is dict:
        return "a mapping of names to sections"
    if section_model(annotation) is not None:
        return "a section (a mapping of keys)"
    base = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    text = base.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return _with_bounds(text, metadata)


def _with_bounds(text: str, metadata: list[Any]) -> str:
    bounds = {type(item).__name__: item for item in metadata}
    if "MinLen" in bounds and bounds["MinLen"].min_length == 1:
        text = text.replace("a string", "a non-empty string")
    lower = bounds.get("Ge")
    upper = bounds.get("Le")
    if isinstance(lower, annotated_types.Ge) and isinstance(upper, annotated_types.Le):
        return f"{text} between {lower.ge} and {upper.le}"
    if isinstance(lower, annotated_types.Ge):
        return f"{text} of at least {lower.ge}"
    if isinstance(bounds.get("Gt"), annotated_types.Gt):
        return f"{text} greater than {bounds['Gt'].gt}"
    return text


def iter_keys(
    model: type[BaseModel] = BridgeConfig, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo]]:
    """Every leaf key of the schema as (dotted path, field); connectors as ``connectors.<name>``."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = section_model(field.annotation)
        if nested is not None:
            yield from iter_keys(nested, f"{path}.")
        elif get_origin(field.annotation) is dict and (
            (value_model := section_model(get_args(field.annotation)[1])) is not None
        ):
            yield from iter_keys(value_model, f"{path}.<name>.")
        else:
            yield path, field


__all__ = [
    "AppserviceConfig",
    "AppserviceTokens",
    "BridgeConfig",
    "ConnectorSection",
    "DatabaseConfig",
    "HomeserverConfig",
    "InboxConfig",
    "ListenConfig",
    "LoggingConfig",
    "MetricsListenConfig",
    "PublicListenConfig",
    "describe_expected",
    "iter_keys",
    "section_model",
]
