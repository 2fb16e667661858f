"""A :class:`BridgeContext` built by hand, for unit tests of a connector outside a running bridge.

Connectors are built with their context (``factory(ctx)``); a test that only exercises part of one
(its grammar, a route) gives it this. What the test does not provide (the homeserver, the core)
fails loudly when reached, naming what is missing, rather than answering something plausible.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from bridgekit import BridgeContext, MatrixAPI, MediaSource, RemoteSink, UserID


class _Absent:
    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"this test's connector reached {self._what} ({name}), which the test has not provided")


def hand_built_context(name: str, settings: Any, *, media: MediaSource | None = None) -> BridgeContext:
    return BridgeContext(
        name=name, settings=settings, matrix=cast(MatrixAPI, _Absent("the homeserver")),
        bot_user_id=UserID("@bridgebot:example.org"), server_name="example.org", ghost_prefix="_",
        alias_prefix="_", log=logging.getLogger(f"tests.{name}"), remote=cast(RemoteSink, _Absent("the core")),
        media=media,
    )
