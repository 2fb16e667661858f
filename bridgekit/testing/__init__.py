"""Test helpers for bridges and for bridgekit itself: the conformance kit, the memonet example
connector, and :class:`FakeHomeserver` for fast unit tests of code that talks to Matrix."""

from bridgekit.testing.fake_homeserver import FakeHomeserver

__all__ = ["FakeHomeserver"]
