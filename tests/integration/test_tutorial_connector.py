"""The tutorial's connector (docs/connectors.md quotes tests/data/tutorial_package/tutorial_connector.py
whole) passes the conformance kit on Synapse with a real ``bridgekit run`` and chatnet.

The test is the package's own (``tests/data/tutorial_package/test_tutorial_kit.py``, the file
the tutorial shows a connector author writing), run here on this session's Synapse with the
connector named by its path in this repository; test_connector_package.py runs the same file in
a fresh venv where the package and ``bridgekit[testing]`` are installed."""

from __future__ import annotations

import pytest

from tests.data.tutorial_package.test_tutorial_kit import TestTutorialConnector as PackagedKitTest

pytestmark = pytest.mark.integration


class TestTutorialConnector(PackagedKitTest):
    factory = "tests.data.tutorial_package.tutorial_connector:RelayConnector"
