"""Health endpoints for orchestrators and admins: no authentication, no secrets.

``/health/live``: the process answers. ``/health/ready``: the database is migrated and events left
pending by the previous run are queued, so transactions are being accepted. ``/health``: details.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bridgekit.appservice.state import State

router = APIRouter(prefix="/health")


@router.get("")
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
    }
    return JSONResponse(body, status_code=200 if health.ready else 503)


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(state: State) -> JSONResponse:
    if state.health.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "starting"}, status_code=503)


__all__ = ["router"]
