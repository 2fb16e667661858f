"""Finding connectors: by entry point (``bridgekit.connectors`` group) or by import path.

A third-party package makes its connector available by declaring, in its pyproject.toml::

    [project.entry-points."bridgekit.connectors"]
    mynet = "mynet_bridge:MyNetConnector"

and an admin enables it with a ``connectors: {mynet: {...}}`` section. A section may instead name
``factory: "package.module:Class"`` directly (handy for connectors that are not installed as
packages, and in tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from bridgekit.config import BridgeConfig
from bridgekit.connector import NetworkConnector
from bridgekit.errors import ConfigError

ENTRY_POINT_GROUP = "bridgekit.connectors"

CORE_SECTION_KEYS = frozenset({"factory", "relay_template"})
"""Keys of a connector section the core reads (besides enabled/ghost_prefix/alias_prefix)."""


def connector_settings(name: str, connector: object, raw: dict[str, Any], *, warn: Callable[[str], None]) -> Any:
    """The connector's settings: validated by its ``Settings`` model when it has one.

    Raises ConfigError naming each bad key as ``connectors.<name>.<key>`` with what it expects.
    """
    own = {key: value for key, value in raw.items() if key not in CORE_SECTION_KEYS}
    model = getattr(type(connector), "Settings", None)
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


def load_connectors(config: BridgeConfig) -> list[NetworkConnector]:
    """Instantiate every enabled connector of the config, in the order of the file."""
    connectors = []
    for name, section in config.connectors.items():
        if not section.enabled:
            continue
        factory = _resolve_factory(name, section.settings().get("factory"))
        connector = factory()
        if not isinstance(connector, NetworkConnector):
            raise ConfigError(
                f"connectors.{name}: {factory!r} did not build a connector (it needs name, start, "
                "stop and handle_matrix_event; see bridgekit/connector.py)"
            )
        connector.name = name
        connectors.append(connector)
    return connectors


def _resolve_factory(name: str, import_path: object) -> Callable[[], Any]:
    if isinstance(import_path, str) and ":" in import_path:
        return _import_object(name, import_path)
    # ``factory: irc`` names an installed connector: several sections (IRC networks) can run one.
    wanted = import_path if isinstance(import_path, str) else name
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == wanted:
            loaded: Callable[[], Any] = entry_point.load()
            return loaded
    raise ConfigError(
        f"connectors.{name}: no connector named '{wanted}' is installed (entry point group "
        f"'{ENTRY_POINT_GROUP}'); install its package or set connectors.{name}.factory to "
        "an installed connector's name or 'package.module:Class'"
    )


def _import_object(name: str, import_path: str) -> Callable[[], Any]:
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"connectors.{name}.factory: '{import_path}' must look like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
        factory: Callable[[], Any] = getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"connectors.{name}.factory: cannot import '{import_path}': {error}") from error
    return factory


__all__ = ["CORE_SECTION_KEYS", "ENTRY_POINT_GROUP", "connector_settings", "load_connectors"]
