"""Typed configuration: the YAML file an admin writes, validated into pydantic models.

The file is read, never rewritten. Unknown keys are warned about (by :mod:`bridgekit.config_loader`)
and kept, never silently dropped. Every connector has its own section under ``connectors:``, which
the connector validates with a model of its own; the core only reads the keys every connector
shares (whether it is enabled and the prefixes its ghosts and aliases use).

Secrets (the appservice tokens) do not live here: the config names the registration file, and the
tokens are read from there or from the environment, so they exist in one place only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    # Unknown keys are kept on the model (and warned about by the loader), never dropped.
    model_config = ConfigDict(extra="allow", frozen=True)


class HomeserverConfig(_Section):
    """How the bridge reaches its homeserver."""

    url: Annotated[str, Field(description="Client-Server API base URL the bridge calls, e.g. http://127.0.0.1:8008")] = (
        "http://127.0.0.1:8008"
    )
    server_name: Annotated[str, Field(description="The homeserver's server name: the part after ':' in user IDs")] = (
        "localhost"
    )
    timeout_seconds: Annotated[float, Field(gt=0, description="Timeout of one request to the homeserver")] = 30.0
    max_retries: Annotated[int, Field(ge=0, description="Retries of a request after 429, 5xx or a network error")] = 8


class ListenConfig(_Section):
    """The listener the homeserver talks to. Keep it on loopback or an internal network."""

    host: Annotated[str, Field(description="Address to bind; 127.0.0.1 unless the homeserver is on another host")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=1, le=65535, description="Port to bind")] = 29330


class AppserviceConfig(_Section):
    """The appservice: its identity, its listener and where its registration lives."""

    id: Annotated[str, Field(min_length=1, description="Registration ID; never change it once registered")] = (
        "bridgekit"
    )
    listen: ListenConfig = ListenConfig()
    address: Annotated[
        str | None,
        Field(description="URL the homeserver uses to reach this listener (registration 'url'); "
              "defaults to http://{listen.host}:{listen.port}"),
    ] = None
    public_url: Annotated[
        str | None,
        Field(description="URL outside users reach (links, media, webhooks); separate from the listener"),
    ] = None
    registration: Annotated[
        str,
        Field(description="Path of the registration file holding as_token and hs_token "
              "(relative paths are relative to the config file)"),
    ] = "registration.yaml"
    bot_localpart: Annotated[str, Field(min_length=1, description="Localpart of the bridge bot user")] = (
        "_bridgekit_bot"
    )
    bot_displayname: str | None = "bridgekit bot"
    max_body_bytes: Annotated[
        int,
        Field(ge=32 * 1024 * 1024, description="Largest transaction body accepted (at least 32 MiB: "
              "a refused transaction wedges the homeserver's queue)"),
    ] = 64 * 1024 * 1024
    receive_ephemeral: Annotated[bool, Field(description="Ask for typing, receipts and presence")] = False

    @property
    def hs_reachable_url(self) -> str:
        """The URL written into the registration for the homeserver to call."""
        return self.address or f"http://{self.listen.host}:{self.listen.port}"


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
    prune_interval_seconds: Annotated[float, Field(gt=0, description="How often pruning runs")] = 3600.0
    max_attempts: Annotated[int, Field(ge=1, description="Attempts to handle one event before it is marked failed")] = 5


class LoggingConfig(_Section):
    level: Annotated[str, Field(description="DEBUG, INFO, WARNING or ERROR")] = "INFO"
    access_log: Annotated[bool, Field(description="Log each HTTP request (tokens and secrets redacted)")] = True

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper


class ConnectorSection(_Section):
    """The keys every connector section shares; the rest belongs to the connector's own model."""

    enabled: bool = True
    ghost_prefix: Annotated[
        str | None,
        Field(description="Localpart prefix of this connector's ghosts; defaults to _{name}_ "
              "(underscore first, as the spec recommends for exclusive namespaces)"),
    ] = None
    alias_prefix: Annotated[
        str | None, Field(description="Alias localpart prefix of this connector's portals; defaults to _{name}_")
    ] = None

    def ghost_prefix_for(self, name: str) -> str:
        return self.ghost_prefix if self.ghost_prefix is not None else f"_{name}_"

    def alias_prefix_for(self, name: str) -> str:
        return self.alias_prefix if self.alias_prefix is not None else f"_{name}_"

    def settings(self) -> dict[str, Any]:
        """The connector-specific keys (everything but the shared ones), for the connector's model."""
        return dict(self.model_extra or {})


class BridgeConfig(_Section):
    """The whole config file."""

    homeserver: HomeserverConfig = HomeserverConfig()
    appservice: AppserviceConfig = AppserviceConfig()
    database: DatabaseConfig = DatabaseConfig()
    inbox: InboxConfig = InboxConfig()
    logging: LoggingConfig = LoggingConfig()
    connectors: dict[str, ConnectorSection] = Field(default_factory=dict)

    @property
    def bot_user_id(self) -> str:
        return f"@{self.appservice.bot_localpart}:{self.homeserver.server_name}"


class AppserviceTokens(BaseModel):
    """The two secrets of a registration, read from the registration file or the environment."""

    model_config = ConfigDict(frozen=True)

    as_token: str = Field(min_length=16, repr=False)
    hs_token: str = Field(min_length=16, repr=False)


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
]
