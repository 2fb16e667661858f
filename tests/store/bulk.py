"""Filling a database with many portals and ghosts, for start-up tests and benchmarks.

The benchmark imports :func:`populate_portals_and_ghosts` from here (``tests.store.bulk``).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert

from bridgekit.store import Database, Ghost, Portal

BATCH_SIZE = 1000


async def populate_portals_and_ghosts(db: Database, n: int, *, network: str = "irc") -> None:
    """Insert ``n`` portals (with rooms) and ``n`` ghosts of ``network``, in one transaction."""
    now = time.time_ns() // 1_000_000
    portals = [_portal(network, i, now) for i in range(n)]
    ghosts = [_ghost(network, i) for i in range(n)]
    async with db.write() as connection:
        for start in range(0, n, BATCH_SIZE):
            await connection.execute(insert(Portal), portals[start : start + BATCH_SIZE])
            await connection.execute(insert(Ghost), ghosts[start : start + BATCH_SIZE])


def _portal(network: str, i: int, now: int) -> dict[str, Any]:
    return {
        "network": network,
        "remote_id": f"#channel{i}",
        "room_id": f"!room{i}:localhost",
        "name": f"#channel{i}",
        "topic": f"topic of channel {i}",
        "name_set": True,
        "meta": {"modes": "+nt"},
        "created_at": now,
    }


def _ghost(network: str, i: int) -> dict[str, Any]:
    return {
        "network": network,
        "remote_id": f"nick{i}",
        "user_id": f"@_{network}_nick{i}:localhost",
        "registered": True,
        "name": f"nick{i}",
        "name_set": True,
        "meta": {},
    }
