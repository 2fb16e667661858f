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

from bridgekit.config import BridgeConfig
from bridgekit.connector import NetworkConnector
from bridgekit.errors import ConfigError

ENTRY_POINT_GROUP = "bridgekit.connectors"


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
    if isinstance(import_path, str):
        return _import_object(name, import_path)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == name:
            loaded: Callable[[], Any] = entry_point.load()
            return loaded
    raise ConfigError(
        f"connectors.{name}: no connector named '{name}' is installed (entry point group "
        f"'{ENTRY_POINT_GROUP}'); install its package or set connectors.{name}.factory to "
        "'package.module:Class'"
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


__all__ = ["ENTRY_POINT_GROUP", "load_connectors"]
