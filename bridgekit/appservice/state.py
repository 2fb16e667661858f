"""What the appservice's routes need, gathered in one object held by the app (no globals)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from bridgekit.appservice.token_refusals import TokenRefusals
from bridgekit.core.bridge import Bridge
from bridgekit.core.inbox import Inbox
from bridgekit.core.remote_delivery import RemoteDelivery
from bridgekit.telemetry import BridgeMetrics


@dataclass
class Health:
    ready: bool = False
    """True once the database is migrated and pending events are replayed."""
    started_at: float = field(default_factory=time.time)
    homeserver_reachable: bool | None = None
    """Result of the start-up ping: None until it has run."""
    last_ping_from_homeserver: float | None = None
    transactions: int = 0
    duplicate_transactions: int = 0
    rejected_entries: int = 0


@dataclass
class AppserviceState:
    hs_token: bytes
    max_body_bytes: int
    inbox: Inbox
    bridge: Bridge
    database_dialect: str
    health: Health = field(default_factory=Health)
    token_refusals: TokenRefusals = field(default_factory=TokenRefusals)
    connector_status: Callable[[], dict[str, dict[str, str | None]]] = lambda: {}
    """Each connector's connection to its network (state and detail), for ``/health``."""
    metrics: BridgeMetrics = field(default_factory=BridgeMetrics)
    """The bridge's instruments and the registry ``/metrics`` serves."""
    outbox: RemoteDelivery | None = None
    """Remote -> Matrix delivery, whose queue depth and counters ``/metrics`` reads."""
    session_counts: Callable[[], dict[tuple[str, str], int]] = lambda: {}
    """Sessions by (network, state), for ``/metrics``."""


def get_state(request: Request) -> AppserviceState:
    return get_state_of_app(request.app)


def get_state_of_app(app: Any) -> AppserviceState:
    state: AppserviceState = app.state.bridgekit
    return state


State = Annotated[AppserviceState, Depends(get_state)]

__all__ = ["AppserviceState", "Health", "State", "get_state", "get_state_of_app"]
