"""Test helpers for bridges and for bridgekit itself: the conformance kit, the pytest plugin with a
real Synapse and bridge processes (``pytest_plugin``), the memonet example connector, and
:class:`FakeHomeserver` for fast unit tests of code that talks to Matrix.

``FakeHomeserver`` is imported on first use: the pytest plugin, loaded by every pytest run where
bridgekit is installed, imports this package and must stay light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridgekit.testing.fake_homeserver import FakeHomeserver

__all__ = ["FakeHomeserver"]


def __getattr__(name: str) -> Any:
    if name == "FakeHomeserver":
        from bridgekit.testing.fake_homeserver import FakeHomeserver

        return FakeHomeserver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
