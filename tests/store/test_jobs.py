"""The job queue (``ctx.jobs``) on SQLite and PostgreSQL: order per key with a failing job, other
keys not held back, capped exponential backoff on an injected clock, restart recovery, final
failures recorded. Time is fake: the runner's sleep records the wait and moves the clock."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bridgekit.connector import GiveUpJob, Job, JobRetry
from bridgekit.core.jobs import ConnectorJobs, JobRunner
from bridgekit.store import Database
from bridgekit.store import Job as JobTable
from bridgekit.store.jobs import JobRow, JobStore
from bridgekit.testing.waiting import until

HOOKS = "hooks"


class FakeTime:
    """Epoch seconds that move only when the runner sleeps; ``hold`` makes sleeps wait for a release."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.waits: list[float] = []
        self.hold: asyncio.Event | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.hold is not None:
            await self.hold.wait()
        self.now += seconds


class Receiver:
    """A job handler standing for an outbound webhook receiver that answers 500 a set number of times."""

    def __init__(self, failures: dict[str, int] | None = None) -> None:
        self.failures = dict(failures or {})
        self.log: list[str] = []

    async def __call__(self, job: Job) -> None:
        name = str(job.payload["name"])
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            self.log.append(f"{name}!")
            raise RuntimeError("the receiver answered 500")
        self.log.append(name)

    def of(self, prefix: str) -> list[str]:
        return [entry for entry in self.log if entry.startswith(prefix)]


def runner(database: Database, time: FakeTime) -> JobRunner:
    return JobRunner(JobStore(database), clock=time.clock, sleep=time.sleep)


async def queue(jobs: ConnectorJobs, *names: str) -> None:
    for name in names:  # a1, a2 ... go to hook "a"; b1 ... to hook "b"
        await jobs.enqueue("deliver", {"name": name}, key=f"hook:{name[0]}")


async def test_a_job_in_backoff_holds_back_its_key_only_and_order_per_key_is_kept(database: Database) -> None:
    time = FakeTime()
    jobs_runner = runner(database, time)
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    receiver = Receiver({"a1": 2})  # the first of hook a's three messages fails twice
    jobs.register("deliver", receiver, retry=JobRetry(max_attempts=5, base_seconds=1, cap_seconds=60))
    await queue(jobs, "a1", "a2", "b1", "a3", "b2")
    time.hold = asyncio.Event()
    await jobs_runner.start()
    try:
        await until(lambda: receiver.of("a") == ["a1!"] and receiver.of("b") == ["b1", "b2"])
        assert time.waits == [1.0]  # a1 waits for its retry; a2 and a3 wait behind it
        time.hold.set()
        await jobs_runner.wait_idle()
    finally:
        await jobs_runner.stop()
    assert receiver.of("a") == ["a1!", "a1!", "a1", "a2", "a3"]  # not 2, 3, 1
    assert time.waits == [1.0, 2.0]
    assert await JobStore(database).counts(HOOKS) == {"done": 5}


async def test_the_backoff_doubles_up_to_its_cap_and_a_final_failure_is_recorded_and_told(
    database: Database,
) -> None:
    time = FakeTime()
    jobs_runner = runner(database, time)
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    receiver = Receiver({"a1": 99})
    told: list[tuple[int, int, str]] = []

    async def on_failed(job: Job, error: str) -> None:
        told.append((job.id, job.attempt, error))

    jobs.register("deliver", receiver, retry=JobRetry(max_attempts=6, base_seconds=2, cap_seconds=10),
                  on_failed=on_failed)
    await queue(jobs, "a1", "a2")
    await jobs_runner.start()
    await jobs_runner.wait_idle()
    await jobs_runner.stop()
    assert time.waits == [2.0, 4.0, 8.0, 10.0, 10.0]  # five waits between six attempts, capped at 10 s
    assert receiver.log == ["a1!"] * 6 + ["a2"]  # then the hook moves on
    [failed] = await jobs.failed("deliver")
    assert (failed.payload, failed.attempt, failed.key) == ({"name": "a1"}, 6, "hook:a")
    assert told == [(failed.id, 6, "RuntimeError: the receiver answered 500")]
    assert await JobStore(database).counts(HOOKS) == {"failed": 1, "done": 1}


async def test_giving_up_fails_a_job_at_once(database: Database) -> None:
    time = FakeTime()
    jobs_runner = runner(database, time)
    jobs = ConnectorJobs(jobs_runner, HOOKS)

    async def gone(job: Job) -> None:
        raise GiveUpJob("the receiver answered 410 Gone")

    jobs.register("deliver", gone)
    await queue(jobs, "a1")
    await jobs_runner.start()
    await jobs_runner.wait_idle()
    await jobs_runner.stop()
    assert time.waits == []
    assert [(job.attempt, job.kind) for job in await jobs.failed()] == [(1, "deliver")]
    assert (await JobStore(database).failed(HOOKS))[0].last_error == "the receiver answered 410 Gone"


async def test_jobs_survive_a_restart_with_their_attempts_and_due_time(database: Database) -> None:
    time = FakeTime()
    first = runner(database, time)
    jobs = ConnectorJobs(first, HOOKS)
    receiver = Receiver({"a1": 1})
    jobs.register("deliver", receiver, retry=JobRetry(max_attempts=3, base_seconds=30, cap_seconds=60))
    await queue(jobs, "a1", "a2", "b1")
    time.hold = asyncio.Event()  # nothing moves: the bridge stops during a1's backoff
    await first.start()
    await until(lambda: time.waits == [30.0] and "b1" in receiver.log)  # a1 failed once, waits to retry
    await first.stop(grace_seconds=1)
    assert first.active_keys == 0  # the wait was cancelled at once, nothing left running

    time.hold = None
    time.now += 10  # the bridge was down for 10 s of a1's 30 s backoff
    second = runner(database, time)
    restarted = ConnectorJobs(second, HOOKS)
    after = Receiver()
    restarted.register("deliver", after, retry=JobRetry(max_attempts=3, base_seconds=30, cap_seconds=60))
    await second.start()
    await second.wait_idle()
    await second.stop()
    assert after.log == ["a1", "a2"]  # in order, b1 not again
    assert time.waits == [30.0, 20.0]  # the backoff's remaining 20 s, not a fresh 30


async def test_jobs_of_a_connector_not_running_wait_and_an_unknown_kind_fails(database: Database) -> None:
    time = FakeTime()
    jobs_runner = runner(database, time)
    await ConnectorJobs(jobs_runner, "disabled").enqueue("deliver", {"name": "x1"}, key="k")
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    jobs.register("deliver", Receiver())
    await jobs.enqueue("renamed-kind", {"name": "y1"}, key="k")
    await jobs_runner.start()
    await jobs_runner.wait_idle()
    await jobs_runner.stop()
    store = JobStore(database)
    assert await store.counts("disabled") == {"pending": 1}  # kept for when it runs again
    [unknown] = await store.failed(HOOKS)
    assert unknown.last_error == "no handler is registered for jobs of kind 'renamed-kind'"


async def test_work_queued_twice_under_one_unique_key_runs_once(database: Database) -> None:
    jobs_runner = runner(database, FakeTime())
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    receiver = Receiver()
    jobs.register("deliver", receiver)
    # handle_matrix_event sees an event again after a crash: one delivery per (hook, event).
    first = await jobs.enqueue("deliver", {"name": "a1"}, key="hook:a", unique="hook:a/$event1")
    assert await jobs.enqueue("deliver", {"name": "a1"}, key="hook:a", unique="hook:a/$event1") == first
    await jobs_runner.start()
    await jobs_runner.wait_idle()
    assert await jobs.enqueue("deliver", {"name": "a1"}, key="hook:a", unique="hook:a/$event1") == first  # done
    await jobs.enqueue("deliver", {"name": "a2"}, key="hook:a", unique="hook:a/$event2")
    await until(lambda: len(receiver.log) == 2)
    await jobs_runner.stop()
    assert receiver.log == ["a1", "a2"]
    assert await ConnectorJobs(runner(database, FakeTime()), "other").enqueue(
        "deliver", {"name": "a1"}, key="hook:a", unique="hook:a/$event1"
    ) != first  # unique per connector


async def test_done_jobs_are_pruned_after_their_retention(database: Database) -> None:
    store = JobStore(database)
    old, _ = await store.add(HOOKS, "deliver", "k", {}, unique_key="u1")
    await store.mark_done(old)
    async with database.write() as connection:  # finished longer ago than the retention
        await connection.execute(update(JobTable).where(JobTable.id == old).values(finished_at=1))
    recent, _ = await JobStore(database).add(HOOKS, "deliver", "k", {}, unique_key="u2")
    await JobStore(database).mark_done(recent)  # a new store prunes at its first mark_done
    assert await store.counts(HOOKS) == {"done": 1}
    assert (await store.add(HOOKS, "deliver", "k", {}, unique_key="u1"))[1]  # forgotten: new again


class CountingStore(JobStore):
    """Counts the workers' reads, so a test knows every worker holds its job."""

    reads = 0

    async def next_for(self, network: str, ordering_key: str) -> JobRow | None:
        row = await super().next_for(network, ordering_key)
        self.reads += 1
        return row


async def test_no_more_handlers_run_at_once_than_allowed(database: Database) -> None:
    store = CountingStore(database)
    jobs_runner = JobRunner(store, max_running=2)
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    running: set[str] = set()
    most = 0
    release = asyncio.Event()

    async def slow(job: Job) -> None:
        nonlocal most
        running.add(job.key)
        most = max(most, len(running))
        await release.wait()
        running.discard(job.key)

    jobs.register("deliver", slow)
    for hook in "abcde":
        await jobs.enqueue("deliver", {}, key=f"hook:{hook}")
    await jobs_runner.start()
    await until(lambda: store.reads == 5 and len(running) >= 2)
    await asyncio.sleep(0)  # one more turn of the loop: an uncapped worker would be running now
    assert len(running) == 2
    release.set()
    await jobs_runner.wait_idle()
    await jobs_runner.stop()
    assert most == 2
    assert await JobStore(database).counts(HOOKS) == {"done": 5}


async def test_jobs_queued_while_running_start_their_key_and_run_in_order(database: Database) -> None:
    jobs_runner = runner(database, FakeTime())
    jobs = ConnectorJobs(jobs_runner, HOOKS)
    receiver = Receiver()
    jobs.register("deliver", receiver)
    await jobs_runner.start()
    try:
        names = [f"a{i}" for i in range(20)]
        await queue(jobs, *names)
        await until(lambda: len(receiver.log) == 20)
        assert receiver.log == names
    finally:
        await jobs_runner.stop()
