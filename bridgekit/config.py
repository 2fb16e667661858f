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

import re
import types
from collections.abc import Iterator
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from bridgekit.config_sections import (
    AppserviceConfig,
    DatabaseConfig,
    DoublePuppetConfig,
    HomeserverConfig,
    InboxConfig,
    ListenConfig,
    LoggingConfig,
    MetricsListenConfig,
    ProvisioningConfig,
    PublicListenConfig,
    SecretsConfig,
    Section,
    check_localpart,
)

# The framework's sections live in their own module; they are imported from here as before.
from bridgekit.naming import prefix_names_network

_CONNECTOR_NAME = re.compile(r"[a-z0-9-]+")


class ConnectorSection(Section):
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

    _check_prefixes = field_validator("ghost_prefix", "alias_prefix")(check_localpart)

    def ghost_prefix_for(self, name: str) -> str:
        return self.ghost_prefix if self.ghost_prefix is not None else f"_{name}_"

    def alias_prefix_for(self, name: str) -> str:
        return self.alias_prefix if self.alias_prefix is not None else f"_{name}_"

    def settings(self) -> dict[str, Any]:
        """The connector-specific keys (all but the shared ones), for the connector's model."""
        return dict(self.model_extra or {})


class BridgeConfig(Section):
    """The whole config file."""

    homeserver: HomeserverConfig = HomeserverConfig()
    appservice: AppserviceConfig = AppserviceConfig()
    database: DatabaseConfig = DatabaseConfig()
    inbox: InboxConfig = InboxConfig()
    logging: LoggingConfig = LoggingConfig()
    secrets: SecretsConfig = SecretsConfig()
    double_puppet: DoublePuppetConfig = DoublePuppetConfig()
    provisioning: ProvisioningConfig = ProvisioningConfig()
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
    # and only the whole namespace {prefix}{name}_ must not overlap another's. With the default
    # prefix _{name}_ the name is not repeated: the namespace is the whole prefix.
    prefixes = {
        name: _ghost_namespace(section.ghost_prefix_for(name), name) if kind == "ghost_prefix"
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


def _ghost_namespace(prefix: str, name: str) -> str:
    return prefix if prefix_names_network(prefix, name) else f"{prefix}{name}_"


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
    "DoublePuppetConfig",
    "HomeserverConfig",
    "InboxConfig",
    "ListenConfig",
    "LoggingConfig",
    "MetricsListenConfig",
    "PublicListenConfig",
    "SecretsConfig",
    "describe_expected",
    "iter_keys",
    "section_model",
]
