"""Finding connectors: by entry point (``bridgekit.connectors`` group) or by import path.

A connector is built by calling its factory with its context (``factory(ctx)``, see
:data:`bridgekit.connector.ConnectorFactory`), after its section was validated with the factory's
``Settings``. A third-party package makes its connector available by declaring, in its
pyproject.toml::

    [project.entry-points."bridgekit.connectors"]
    mynet = "mynet_bridge:MyNetConnector"

and an admin enables it with a ``connectors: {mynet: {...}}`` section. A section may instead name
``factory: "package.module:Class"`` directly (handy for connectors that are not installed as
packages, and in tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from bridgekit.config import BridgeConfig
from bridgekit.connector import (
    PORTAL_MESSAGE_RECEIVERS,
    BridgeContext,
    ConnectorFactory,
    LoginProvider,
    MatrixEventHandler,
    NetworkConnector,
    PortalMessages,
    RelayProvider,
    VirtualUserProvider,
)
from bridgekit.errors import ConfigError

ENTRY_POINT_GROUP = "bridgekit.connectors"

CORE_SECTION_KEYS = frozenset({"factory", "relay_template"})
"""Keys of a connector section the core reads (besides enabled/ghost_prefix/alias_prefix)."""


@dataclass(frozen=True)
class PlannedConnector:
    """An enabled config section, ready to build: its factory found, its section validated."""

    name: str
    factory: ConnectorFactory
    settings: Any
    """What the factory's context carries as ``ctx.settings``."""


def plan_connectors(config: BridgeConfig, *, warn: Callable[[str], None]) -> list[PlannedConnector]:
    """Every enabled connector of the config, in the order of the file: its factory resolved and
    its section validated by the factory's ``Settings``, before anything is built or opened."""
    planned = []
    for name, section in config.connectors.items():
        if not section.enabled:
            continue
        raw = section.settings()
        factory = _resolve_factory(name, raw.get("factory"))
        planned.append(PlannedConnector(name, factory, connector_settings(name, factory, raw, warn=warn)))
    return planned


def connector_factories(config: BridgeConfig) -> list[ConnectorFactory]:
    """The factories of the enabled connectors, unbuilt: for commands that read only what a
    factory declares (the third-party protocols a registration lists)."""
    return [
        _resolve_factory(name, section.settings().get("factory"))
        for name, section in config.connectors.items() if section.enabled
    ]


def connector_settings(name: str, factory: object, raw: dict[str, Any], *, warn: Callable[[str], None]) -> Any:
    """The connector's settings: validated by its factory's ``Settings`` model when it has one.

    Raises ConfigError naming each bad key as ``connectors.<name>.<key>`` with what it expects.
    """
    own = {key: value for key, value in raw.items() if key not in CORE_SECTION_KEYS}
    model = getattr(factory, "Settings", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return own
    try:
        settings = model.model_validate(own)
    except ValidationError as error:
        problems = "; ".join(
            f"connectors.{name}.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"{problems} (fix the connector's section in the config)") from None
    for key in sorted(set(own) - set(model.model_fields)):
        warn(f"connectors.{name}.{key} is not a setting of the {name} connector; it is kept, but nothing reads it")
    return settings


def build_connector(planned: PlannedConnector, ctx: BridgeContext) -> NetworkConnector:
    """``factory(ctx)``, checked: a connector, named after its section, that says where its portal
    messages go when that is not plain from what it offers."""
    connector = planned.factory(ctx)
    if not isinstance(connector, NetworkConnector):
        raise ConfigError(
            f"connectors.{planned.name}: {planned.factory!r} did not build a connector (it needs name, "
            "start and stop; see bridgekit/connector.py)"
        )
    if connector.name != planned.name:
        raise ConfigError(
            f"connectors.{planned.name}: the connector calls itself {connector.name!r}; set "
            "``self.name = ctx.name`` in its __init__ (or subclass bridgekit.ConnectorBase)"
        )
    portal_message_receiver(connector)
    return connector


def portal_message_receiver(connector: NetworkConnector) -> PortalMessages | None:
    """Which of the connector's abilities receives its portal messages (None: it has neither).

    Raises ConfigError, naming the connector and the fix, when the connector offers both sessions
    and ``handle_matrix_event`` without declaring ``portal_messages``, or declares an ability it
    lacks: a silent choice would send messages where its author did not expect them."""
    sessions = isinstance(connector, RelayProvider | VirtualUserProvider | LoginProvider)
    events = isinstance(connector, MatrixEventHandler)
    declared = getattr(connector, "portal_messages", None)
    where = f"connectors.{connector.name} ({type(connector).__name__})"
    if declared is None:
        if sessions and events:
            raise ConfigError(
                f"{where} offers sessions and handle_matrix_event: declare which receives portal "
                'messages with the class attribute portal_messages = "sessions" (routed to its sessions; '
                'handle_matrix_event still gets membership, state and non-portal events) or "events" '
                "(all to handle_matrix_event). See docs/connectors.md."
            )
        return "sessions" if sessions else "events" if events else None
    if declared not in PORTAL_MESSAGE_RECEIVERS:
        raise ConfigError(f'{where}: portal_messages must be "sessions" or "events", not {declared!r}')
    if (declared == "sessions" and not sessions) or (declared == "events" and not events):
        lacking = "no session provider (relay_session, virtual_session or login)" if declared == "sessions" \
            else "no handle_matrix_event"
        raise ConfigError(f"{where} declares portal_messages = {declared!r} but has {lacking}")
    return declared  # type: ignore[no-any-return]


class ConnectorTable(Mapping[str, NetworkConnector]):
    """The bridge's connectors by section name, in the order of the config.

    Made empty for the core, which is built before the connectors (their contexts call into it),
    and filled once, when they are built: before anything serves or handles an event."""

    def __init__(self) -> None:
        self._by_name: dict[str, NetworkConnector] = {}
        self.in_order: list[NetworkConnector] = []
        """The same connectors as a list (the same list object all along)."""

    def add(self, connector: NetworkConnector) -> None:
        if connector.name in self._by_name:
            raise ValueError(f"two connectors named {connector.name!r}")
        self._by_name[connector.name] = connector
        self.in_order.append(connector)

    def __getitem__(self, name: str) -> NetworkConnector:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def _resolve_factory(name: str, import_path: object) -> ConnectorFactory:
    if isinstance(import_path, str) and ":" in import_path:
        return _import_object(name, import_path)
    # ``factory: irc`` names an installed connector: several sections (IRC networks) can run one.
    wanted = import_path if isinstance(import_path, str) else name
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == wanted:
            loaded: ConnectorFactory = entry_point.load()
            return loaded
    raise ConfigError(
        f"connectors.{name}: no connector named '{wanted}' is installed (entry point group "
        f"'{ENTRY_POINT_GROUP}'); install its package or set connectors.{name}.factory to "
        "an installed connector's name or 'package.module:Class'"
    )


def _import_object(name: str, import_path: str) -> ConnectorFactory:
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"connectors.{name}.factory: '{import_path}' must look like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
        factory: ConnectorFactory = getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"connectors.{name}.factory: cannot import '{import_path}': {error}") from error
    return factory


__all__ = [
    "CORE_SECTION_KEYS",
    "ENTRY_POINT_GROUP",
    "ConnectorTable",
    "PlannedConnector",
    "build_connector",
    "connector_factories",
    "connector_settings",
    "plan_connectors",
    "portal_message_receiver",
]
