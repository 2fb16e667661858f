"""Health endpoints for orchestrators and admins: no authentication, no secrets.

``/health/live``: the process answers. ``/health/ready``: the database is migrated and events left
pending by the previous run are queued, so transactions are being accepted. These two *probes*
say nothing else, and are served on the homeserver's listener and the metrics listener.
``/health``: details (counters, connectors and their connections), on the metrics listener only.
Readiness is the bridge's own: a connector whose network cannot be reached (an IRC server down at
start, retried with backoff) leaves it ready, and shows in ``/health``'s ``connector_status``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bridgekit.appservice.state import State

details_router = APIRouter(prefix="/health")
probes_router = APIRouter(prefix="/health")


@details_router.get("")
async def health(state: State) -> JSONResponse:
    health = state.health
    dispatcher = state.inbox.dispatcher
    body: dict[str, Any] = {
        "status": "ok" if health.ready else "starting",
        "uptime_seconds": round(time.time() - health.started_at, 1),
        "database": state.database_dialect,
        "homeserver_reachable": health.homeserver_reachable,
        "inbox": {
            "transactions": health.transactions,
            "duplicate_transactions": health.duplicate_transactions,
            "rejected_entries": health.rejected_entries,
            "queued_events": dispatcher.queued,
            "active_rooms": dispatcher.active_rooms,
            "handled_events": state.inbox.handled,
            "failed_events": state.inbox.failed,
        },
        "connectors": [connector.name for connector in state.bridge.connectors],
        # A network that cannot be reached does not make the bridge unready (Matrix and the other
        # networks work): it shows here, as its connection's state ("transient-disconnect").
        "connector_status": state.connector_status(),
    }
    return JSONResponse(body, status_code=200 if health.ready else 503)


@probes_router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@probes_router.get("/ready")
async def ready(state: State) -> JSONResponse:
    if state.health.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "starting"}, status_code=503)


__all__ = ["details_router", "probes_router"]
