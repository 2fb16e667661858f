"""The first start on the bridge's database: what the old ``webhook.db`` held moves in, once.

Before the webhook bridge kept its tables in the bridge's database it had a SQLite file of its
own (``database`` in its settings, ``webhook.db`` by default). At the first start of this
version its hooks, their ghosts, the requests it remembered (Idempotency-Keys) and the messages
it still had to deliver to outbound hooks are copied into the bridge's database: hooks and
requests as they were (secrets sealed with an old key or in the old format are sealed again by
the start-up pass, ``WebhookStore.reseal_secrets``), pending deliveries as jobs of the
framework's queue, in the order they were queued. That it ran is recorded in ``ctx.kv``, so it
never runs again; the old file is left where it was (the log says it is no longer used).

Each copy is idempotent (rows are merged by primary key, jobs queued once per hook and event),
so a start interrupted in the middle imports the rest at the next one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from bridgekit import BridgeContext, RemoteUserID, SQLiteFileReader, UserID, read_sqlite_file, sqlite_path
from bridges.webhook.identity import ghost_sender_id_of
from bridges.webhook.outbound import delivery_job, enqueue_delivery
from bridges.webhook.tables import Base, Hook, HookGhost, InboundMessage, OutboundHook

log = logging.getLogger(__name__)

DONE_KEY = "legacy_import"
"""The ``ctx.kv`` key recording that the import ran (and what it found)."""

_TABLES: tuple[tuple[str, type[Base]], ...] = (
    ("webhook_hook", Hook), ("webhook_outbound", OutboundHook), ("webhook_ghost", HookGhost),
    ("webhook_inbound", InboundMessage),
)


async def import_legacy_database(ctx: BridgeContext, database_url: str) -> dict[str, int] | None:
    """Import the old webhook database once; what was copied (None: it ran before)."""
    kv = ctx.kv
    if kv is None or await kv.get(DONE_KEY) is not None:
        return None
    path = sqlite_path(database_url)
    counts: dict[str, int] = {}
    if path is not None and path.is_file():
        async with read_sqlite_file(path) as old:
            counts = await _copy(ctx, old)
        log.info("imported the webhook database %s into the bridge's database (%s); that file is no longer "
                 "used and may be deleted", path, ", ".join(f"{n} {what}" for what, n in counts.items()) or "empty")
    elif path is None:
        log.warning("connectors.%s.database %s is not a SQLite file: its hooks are not imported", ctx.name,
                    database_url)
    await kv.set(DONE_KEY, {"from": str(path or database_url), "at_ms": int(time.time() * 1000), **counts})
    return counts


async def _copy(ctx: BridgeContext, old: SQLiteFileReader) -> dict[str, int]:
    present = await old.tables()
    copied: dict[str, list[Mapping[str, Any]]] = {}
    async with ctx.database.write_session() as session:
        for table, model in _TABLES:
            copied[table] = rows = await old.rows(f"SELECT * FROM {table}") if table in present else []  # noqa: S608
            for row in rows:
                await session.merge(model(**_columns(model, row)))
    # The ghosts the old bridge made keep their IDs (it named them ``{prefix}{connector}_{hook}.
    # {key}``; the core's rule may be shorter now), so each sender stays the same Matrix user.
    for row in copied["webhook_ghost"]:
        await ctx.keep_ghost_id(RemoteUserID(ghost_sender_id_of(row["hook_id"], row["name_key"])),
                                UserID(row["user_id"]))
    counts = {table.removeprefix("webhook_"): len(rows) for table, rows in copied.items()}
    if "webhook_delivery" in present:
        counts["pending deliveries"] = await _queue_deliveries(ctx, old)
    return counts


def _columns(model: type[Base], row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values the model has (a database from before version 1 lacks some: defaults)."""
    names = set(model.__table__.columns.keys())
    values = {name: value for name, value in row.items() if name in names}
    if isinstance(values.get("message"), str):
        values["message"] = json.loads(values["message"])
    return values


async def _queue_deliveries(ctx: BridgeContext, old: SQLiteFileReader) -> int:
    """Pending deliveries become jobs, in the order they were queued, for hooks that still exist."""
    creators = {row["id"]: row["creator"] for row in await old.rows("SELECT id, creator FROM webhook_outbound")}
    pending = await old.rows("SELECT * FROM webhook_delivery WHERE state = 'pending' ORDER BY rowid")
    queued = 0
    for row in pending:
        if row["hook_id"] not in creators:
            continue
        await enqueue_delivery(ctx.jobs, delivery_job(row["hook_id"], creators[row["hook_id"]], row["event_id"],
                                                      row["room_id"], row["body"], row["id"]))
        queued += 1
    return queued


__all__ = ["DONE_KEY", "import_legacy_database"]
