"""The dependency rules of DESIGN §1, checked on the source (imports point downward only).

cli -> app -> appservice -> core -> (matrix | store | connector) -> events -> (ids | errors).
``app`` is the composition root, the one module that builds store, Matrix client, core,
connectors and HTTP apps together: the HTTP layer (appservice) never opens the store or talks to
the homeserver itself.
store, matrix and connector never import each other; the framework never imports a bridge;
bridges import only what ``bridgekit/__init__.py`` exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# For each layer, the bridgekit layers it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "ids": {"errors", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "errors": {"ids", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "events": {"connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # Leaf utilities: remote identifiers <-> Matrix IDs, and credentials encrypted at rest.
    "naming": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "credentials": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # What a command is (and the permission levels it needs): shared by the contract and the core.
    "commands": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # A user's power in a room, from its state: used by commands (room_admin) and bridge info.
    "room_power": {"connector", "matrix", "store", "core", "appservice", "cli", "config", "commands"},
    # Fetching user-given URLs safely (SSRF guard): leaves, used by the core and by bridges.
    "ssrf": {"ids", "errors", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "guarded_http": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # Keys connectors sign with, and Matrix media streamed out with a cap (redirects guarded).
    "signing": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # Run first by bridgekit/__init__.py: marks third-party modules the bridge never uses as absent.
    "_lean_imports": {"ids", "errors", "events", "connector", "matrix", "store", "core", "appservice", "cli",
                      "config"},
    # The benchmark hook (BRIDGEKIT_BENCH_TRACE): a leaf the HTTP layer, the Matrix client and bridges stamp through.
    "bench_trace": {"ids", "errors", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "media": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    # The bridge's measured instruments (Prometheus) and the JSON log format: leaves, used by the
    # Matrix client, the core and the connector contract alike.
    "telemetry": {"ids", "errors", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "log_format": {"ids", "errors", "events", "connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "config": {"connector", "matrix", "store", "core", "appservice", "cli"},
    "config_sections": {"connector", "matrix", "store", "core", "appservice", "cli", "config"},
    "registration": {"connector", "matrix", "store", "core", "appservice", "cli"},
    "config_loader": {"connector", "matrix", "store", "core", "appservice", "cli"},
    # Paths in the config made absolute (relative to the config file): config only, no bridge.
    "config_paths": {"connector", "matrix", "store", "core", "appservice", "cli"},
    # The checks of `bridgekit doctor` read files and ask the homeserver; they start no bridge.
    "doctor": {"connector", "matrix", "store", "core", "appservice", "cli"},
    "connector": {"matrix", "store", "core", "appservice", "cli"},
    "matrix": {"store", "connector", "core", "appservice", "cli", "config"},
    "store": {"matrix", "connector", "core", "appservice", "cli"},
    "core": {"appservice", "cli"},
    "appservice": {"store", "matrix", "cli"},
    "app": {"cli"},
    # scripts/demo and the test harness's servers: it runs the bridge as a process (`bridgekit run`),
    # so it imports none of the bridge's layers.
    "demo": {"events", "connector", "matrix", "store", "core", "appservice", "cli", "config", "config_loader",
             "registration"},
}
for _layer, _forbidden in FORBIDDEN.items():
    if _layer != "app":
        _forbidden.add("app")  # only cli starts the composition root


def layer_of(path: Path) -> str:
    relative = path.relative_to(ROOT / "bridgekit")
    return relative.parts[0].removesuffix(".py")


def bridgekit_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            found.add(name)
    return found


FRAMEWORK_FILES = sorted((ROOT / "bridgekit").rglob("*.py"))


@pytest.mark.parametrize("path", FRAMEWORK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_framework_imports_point_downward(path: Path) -> None:
    layer = layer_of(path)
    for module in bridgekit_imports(path):
        assert not module.startswith("bridges"), f"{path}: the framework must never import a bridge"
        assert module.split(".")[0] != "tests", f"{path}: shipped code must never import the tests"
        if not module.startswith("bridgekit."):
            continue
        target = module.split(".")[1]
        if target in FORBIDDEN.get(layer, set()):
            pytest.fail(f"{path.relative_to(ROOT)} ({layer}) imports {module}: {layer} must not import {target}")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "bridges").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_bridges_use_only_the_public_api(path: Path) -> None:
    for module in bridgekit_imports(path):
        if module.startswith("bridgekit"):
            assert module == "bridgekit", f"{path}: import from 'bridgekit' (its public API), not {module}"


def test_the_rules_cover_every_layer() -> None:
    layers = {layer_of(path) for path in FRAMEWORK_FILES} - {"__init__", "cli", "testing"}
    assert layers <= set(FORBIDDEN), f"layers without rules: {layers - set(FORBIDDEN)}"
