"""SQL of the job queue (``ctx.jobs``; the runner is ``core/jobs.py``).

A job is committed before ``enqueue`` returns and stays ``pending`` until its handler succeeds
(``done``) or the runner gives up (``failed``, with the last error): a crash at any point leaves
it pending, and the next start runs it again. A job may carry a unique key (one delivery per hook
and Matrix event): queued again, with the same key, it is not stored twice. Done jobs are kept
``DONE_RETENTION_MS`` for that, then pruned (by a ``mark_done`` at most once per
``PRUNE_INTERVAL_MS``: one indexed DELETE, no task of its own). The runner asks for the oldest pending job of one
ordering key at a time, which is what keeps a key's jobs in order (an index serves exactly that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, select, update

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import job
from bridgekit.store.upsert import dialect_module

_JOB: Table = job

ERROR_MAX_CHARS = 2000

DONE_RETENTION_MS = 7 * 24 * 3_600_000
"""How long a done job is kept, so that queuing it again (a replayed Matrix event) is recognised."""

PRUNE_INTERVAL_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    network: str
    kind: str
    ordering_key: str
    payload: Any
    attempts: int
    """Attempts made so far (failed ones: a done job is not read again)."""
    next_attempt_at: int | None
    """Milliseconds since the epoch; None: due at once."""
    last_error: str | None


_COLUMNS = (_JOB.c.id, _JOB.c.network, _JOB.c.kind, _JOB.c.ordering_key, _JOB.c.payload, _JOB.c.attempts,
            _JOB.c.next_attempt_at, _JOB.c.last_error)


def _row(row: Any) -> JobRow:
    payload = json.loads(row.payload) if isinstance(row.payload, str) else row.payload
    return JobRow(row.id, row.network, row.kind, row.ordering_key, payload, row.attempts, row.next_attempt_at,
                  row.last_error)


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_prune_ms = 0

    async def add(
        self, network: str, kind: str, ordering_key: str, payload: Any, *, unique_key: str | None = None
    ) -> tuple[int, bool]:
        """Store a pending job (committed when this returns): its ID, and whether it is new
        (False: a job with the same ``unique_key`` was queued before; its ID)."""
        dialect = dialect_module(self._db.dialect)
        statement = dialect.insert(_JOB).values(
            network=network, kind=kind, ordering_key=ordering_key, unique_key=unique_key, payload=payload,
            state="pending", attempts=0, created_at=now_ms(),
        ).on_conflict_do_nothing().returning(_JOB.c.id)
        async with self._db.write() as conn:
            inserted = (await conn.execute(statement)).scalar()
            if inserted is not None:
                return int(inserted), True
            existing = select(_JOB.c.id).where(_JOB.c.network == network, _JOB.c.unique_key == unique_key)
            return int((await conn.execute(existing)).scalar_one()), False

    async def next_for(self, network: str, ordering_key: str) -> JobRow | None:
        """The oldest pending job of one ordering key."""
        query = select(*_COLUMNS).where(
            _JOB.c.network == network, _JOB.c.ordering_key == ordering_key, _JOB.c.state == "pending"
        ).order_by(_JOB.c.id).limit(1)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return _row(row) if row is not None else None

    async def pending_keys(self) -> list[tuple[str, str]]:
        """(network, ordering key) of every key with pending jobs, oldest job first."""
        query = (
            select(_JOB.c.network, _JOB.c.ordering_key).where(_JOB.c.state == "pending")
            .group_by(_JOB.c.network, _JOB.c.ordering_key).order_by(func.min(_JOB.c.id))
        )
        async with self._db.read() as conn:
            return [(str(network), str(key)) for network, key in (await conn.execute(query)).all()]

    async def mark_done(self, job_id: int) -> None:
        now = now_ms()
        async with self._db.write() as conn:
            await conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                state="done", attempts=_JOB.c.attempts + 1, last_error=None, finished_at=now
            ))
            if now >= self._next_prune_ms:
                self._next_prune_ms = now + PRUNE_INTERVAL_MS
                await conn.execute(delete(_JOB).where(
                    _JOB.c.state == "done", _JOB.c.finished_at < now - DONE_RETENTION_MS
                ))

    async def record_failure(self, job_id: int, error: str, *, retry_at_ms: int | None) -> None:
        """An attempt failed: try again at ``retry_at_ms``, or (None) never: the job failed."""
        values: dict[str, Any] = {"attempts": _JOB.c.attempts + 1, "last_error": error[:ERROR_MAX_CHARS]}
        if retry_at_ms is None:
            values.update(state="failed", finished_at=now_ms())
        else:
            values["next_attempt_at"] = retry_at_ms
        async with self._db.write() as conn:
            await conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(**values))

    async def failed(self, network: str, *, kind: str | None = None, limit: int = 100) -> list[JobRow]:
        """Jobs given up on, newest first."""
        conditions = [_JOB.c.network == network, _JOB.c.state == "failed"]
        if kind is not None:
            conditions.append(_JOB.c.kind == kind)
        query = select(*_COLUMNS).where(*conditions).order_by(_JOB.c.id.desc()).limit(limit)
        async with self._db.read() as conn:
            return [_row(row) for row in (await conn.execute(query)).all()]

    async def counts(self, network: str) -> dict[str, int]:
        """Jobs per state (pending, done, failed) of one connector."""
        query = select(_JOB.c.state, func.count()).where(_JOB.c.network == network).group_by(_JOB.c.state)
        async with self._db.read() as conn:
            return {str(state): int(count) for state, count in (await conn.execute(query)).all()}


__all__ = ["DONE_RETENTION_MS", "JobRow", "JobStore"]
