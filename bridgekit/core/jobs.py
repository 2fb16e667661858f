"""The job queue's runner: connectors' side work, in order per key, retried, across restarts.

One worker task per (connector, ordering key) that has pending jobs, none for idle keys: the
worker reads the key's oldest pending job from the database, waits until it is due, runs its
kind's handler, and records the outcome; then the next. So a job in backoff holds back only its
own key, and since the database is asked each time, nothing is kept in memory and a restart
simply starts a worker for each key with pending jobs.

Jobs of a connector that registered no handler at all (it is disabled, or not started) are left
pending for a later run; a job whose kind has no handler in a connector that registered others
fails at once (a renamed kind would otherwise block its key for ever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridgekit.connector import DEFAULT_JOB_RETRY, GiveUpJob, Job, JobFailureHandler, JobHandler, JobRetry
from bridgekit.core.dispatcher import finish_or_cancel
from bridgekit.store.jobs import JobRow, JobStore

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds since the epoch (due times are stored, so they must survive a restart)."""
Sleep = Callable[[float], Awaitable[None]]

MAX_RUNNING = 32
"""Handlers running at once, over all keys (a restart with thousands of keys pending must not
start thousands of HTTP requests together)."""


@dataclass(frozen=True)
class _Kind:
    handler: JobHandler
    retry: JobRetry
    on_failed: JobFailureHandler | None


class JobRunner:
    def __init__(
        self, store: JobStore, *, clock: Clock = time.time, sleep: Sleep = asyncio.sleep,
        max_running: int = MAX_RUNNING,
    ) -> None:
        self._store = store
        self._running = asyncio.Semaphore(max_running)
        self._clock = clock
        self._sleep = sleep
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._networks: set[str] = set()
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._poked: set[tuple[str, str]] = set()
        """Keys that got a job since their worker last looked (it looks again before it ends)."""
        self._waiting: set[tuple[str, str]] = set()
        """Keys whose worker waits for a due time (cancelled at once at stop)."""
        self._started = False
        self._stopping = False

    def register(
        self, network: str, kind: str, handler: JobHandler, *, retry: JobRetry = DEFAULT_JOB_RETRY,
        on_failed: JobFailureHandler | None = None,
    ) -> None:
        if retry.max_attempts < 1:
            raise ValueError("JobRetry.max_attempts must be at least 1")
        self._kinds[(network, kind)] = _Kind(handler, retry, on_failed)
        self._networks.add(network)

    async def enqueue(self, network: str, kind: str, payload: Any, *, key: str, unique: str | None = None) -> int:
        job_id, new = await self._store.add(network, kind, key, payload, unique_key=unique)
        if new:
            self._poke((network, key))
        return job_id

    async def start(self) -> int:
        """Run the jobs stored so far (call once the connectors registered their handlers);
        returns how many keys had work."""
        self._started = True
        keys = await self._store.pending_keys()
        for key in keys:
            self._poke(key)
        return len(keys)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let running handlers finish (up to ``grace_seconds``), then cancel. Jobs not done stay
        pending for the next start."""
        self._stopping = True
        for key in self._waiting:
            self._workers[key].cancel()
        await finish_or_cancel(list(self._workers.values()), grace_seconds)

    async def failed(self, network: str, kind: str | None = None, *, limit: int = 100) -> list[Job]:
        return [_job(row, row.attempts) for row in await self._store.failed(network, kind=kind, limit=limit)]

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _stopped(self) -> bool:
        # A call, not the attribute: the answer changes across awaits, which mypy's narrowing ignores.
        return self._stopping

    @property
    def active_keys(self) -> int:
        return len(self._workers)

    async def wait_idle(self) -> None:
        """Until no key has a worker (tests and shutdown helpers)."""
        while self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    def _poke(self, key: tuple[str, str]) -> None:
        self._poked.add(key)
        if not self._started or self._stopping or key in self._workers or key[0] not in self._networks:
            return
        self._workers[key] = asyncio.create_task(self._work(key), name=f"jobs:{key[0]}:{key[1]}")

    async def _work(self, key: tuple[str, str]) -> None:
        network, ordering_key = key
        try:
            while not self._stopping:
                self._poked.discard(key)  # before the read: a job added during it pokes again
                row = await self._store.next_for(network, ordering_key)
                if row is None:
                    if key in self._poked:
                        continue
                    return
                if self.stopping:
                    return
                await self._until_due(key, row)
                async with self._running:
                    if self._stopped():
                        return  # waited for a slot past stop(): the job stays pending for the next start
                    await self._attempt(row)
        except Exception:
            # The database failed under us: the jobs stay pending; the next start runs them.
            log.exception("the job worker of %s key %r stopped", network, ordering_key)
        finally:
            self._workers.pop(key, None)
            self._waiting.discard(key)

    async def _until_due(self, key: tuple[str, str], row: JobRow) -> None:
        if row.next_attempt_at is None:
            return
        delay = row.next_attempt_at / 1000 - self._clock()
        if delay <= 0:
            return
        self._waiting.add(key)
        try:
            await self._sleep(delay)
        finally:
            self._waiting.discard(key)

    async def _attempt(self, row: JobRow) -> None:
        kind = self._kinds.get((row.network, row.kind))
        attempt = row.attempts + 1
        job = _job(row, attempt)
        if kind is None:
            error = f"no handler is registered for jobs of kind {row.kind!r}"
            await self._store.record_failure(row.id, error, retry_at_ms=None)
            log.error("job %d of %s failed: %s", row.id, row.network, error)
            return
        try:
            await kind.handler(job)
        except Exception as error:
            await self._failed_attempt(kind, job, row.network, error)
        else:
            await self._store.mark_done(row.id)

    async def _failed_attempt(self, kind: _Kind, job: Job, network: str, error: Exception) -> None:
        reason = str(error) if isinstance(error, GiveUpJob) else f"{type(error).__name__}: {error}"
        if isinstance(error, GiveUpJob) or job.attempt >= kind.retry.max_attempts:
            await self._store.record_failure(job.id, reason, retry_at_ms=None)
            log.warning("job %d (%s of %s, key %r) failed after %d attempts: %s",
                        job.id, job.kind, network, job.key, job.attempt, reason)
            if kind.on_failed is not None:
                try:
                    await kind.on_failed(job, reason)
                except Exception:
                    log.exception("the failure handler of job %d (%s of %s) raised", job.id, job.kind, network)
            return
        delay = kind.retry.delay(job.attempt)
        log.info("job %d (%s of %s): attempt %d failed (%s); next in %.1f s",
                 job.id, job.kind, network, job.attempt, reason, delay)
        await self._store.record_failure(job.id, reason, retry_at_ms=int((self._clock() + delay) * 1000))


def _job(row: JobRow, attempt: int) -> Job:
    return Job(id=row.id, kind=row.kind, key=row.ordering_key, payload=row.payload, attempt=attempt)


class ConnectorJobs:
    """``ctx.jobs``: the runner bound to one connector's name."""

    def __init__(self, runner: JobRunner, network: str) -> None:
        self._runner = runner
        self._network = network

    def register(
        self, kind: str, handler: JobHandler, *, retry: JobRetry = DEFAULT_JOB_RETRY,
        on_failed: JobFailureHandler | None = None,
    ) -> None:
        self._runner.register(self._network, kind, handler, retry=retry, on_failed=on_failed)

    async def enqueue(self, kind: str, payload: Any, *, key: str, unique: str | None = None) -> int:
        return await self._runner.enqueue(self._network, kind, payload, key=key, unique=unique)

    async def failed(self, kind: str | None = None, *, limit: int = 100) -> list[Job]:
        return await self._runner.failed(self._network, kind, limit=limit)


__all__ = ["ConnectorJobs", "JobRunner"]
