"""Shared pytest set-up: the fixture plugins every test module can use.

The Synapse, bridge and chatnet fixtures come from bridgekit's own pytest plugin
(``bridgekit.testing.pytest_plugin``), which the ``pytest11`` entry point loads once bridgekit is
installed; it is named here too for a venv installed before the entry point existed."""

import sys

_PLUGIN = "bridgekit.testing.pytest_plugin"
# Loaded already when pytest found the entry point (pytest loads entry points before conftests);
# registering it a second time under another name would be an error.
_REGISTERED = _PLUGIN in sys.modules

pytest_plugins = [
    *([] if _REGISTERED else [_PLUGIN]),
    "tests.db_fixtures",
    "tests.irc_fixtures",
    "tests.services_fixtures",
    "tests.keeper_fixtures",
]

# tests/data holds connector packages with test suites of their own (run in a venv of their own
# by tests/integration/test_connector_package.py), not tests of this suite.
collect_ignore = ["data"]
