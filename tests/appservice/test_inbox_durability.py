"""The inbox keeps every acknowledged event: replay after a crash, retries, failures, pruning."""

from __future__ import annotations

import asyncio
import json

import pytest

from bridgekit.core.inbox import Inbox
from bridgekit.core.transactions import parse_transaction_body
from bridgekit.events import MatrixEvent
from bridgekit.store import Database
from bridgekit.store.inbox import InboxStore
from bridgekit.testing.waiting import eventually
from tests.appservice.harness import RecordingConnector, message, running_appservice

pytestmark = pytest.mark.integration


def body(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


async def test_acknowledged_but_unhandled_events_are_replayed_after_a_crash(database_url: str) -> None:
    database = await Database.open(database_url)
    stuck = asyncio.Event()

    async def never_finishes(_item: object) -> None:
        await stuck.wait()

    crashed = Inbox(InboxStore(database), never_finishes)
    await crashed.start()
    events = [message(f"$crash{i}", room=f"!room{i % 3}:localhost") for i in range(30)]
    await crashed.accept("1", body(*events))
    # The process dies: handlers never finish, nothing is marked done.
    await crashed.stop(grace_seconds=0)
    await database.close()

    reopened = await Database.open(database_url)
    try:
        async with running_appservice(reopened) as appservice:
            handled = await appservice.connector.wait_for(30)
            await appservice.inbox.dispatcher.wait_idle(10)
            assert sorted(e.event_id for e in handled) == sorted(e["event_id"] for e in events)
            for room in ("!room0:localhost", "!room1:localhost", "!room2:localhost"):
                in_room = [e.event_id for e in handled if e.room_id == room]
                expected = [e["event_id"] for e in events if e["room_id"] == room]
                assert in_room == expected  # order within a room survives the replay
            # A retry of the same transaction by the homeserver is not reprocessed.
            again = await appservice.http.put(
                "/_matrix/app/v1/transactions/1", content=body(*events),
                headers={"Authorization": "Bearer hs_token_for_tests_0123456789"},
            )
            assert again.status_code == 200
            await appservice.inbox.dispatcher.wait_idle(10)
            assert len(appservice.connector.events) == 30
    finally:
        await reopened.close()


async def test_failing_handler_is_retried_in_order_then_succeeds(database: Database) -> None:
    connector = RecordingConnector(fail_times={"$flaky": 2})
    async with running_appservice(database, connector=connector, max_attempts=3) as appservice:
        await appservice.inbox.accept("1", body(message("$flaky"), message("$after")))
        handled = await connector.wait_for(2, within=15)
        assert [e.event_id for e in handled] == ["$flaky", "$after"]
        assert appservice.inbox.failed == 0


async def test_event_failing_every_attempt_is_recorded_and_the_room_moves_on(database: Database) -> None:
    connector = RecordingConnector(fail_times={"$doomed": 99})
    async with running_appservice(database, connector=connector, max_attempts=2) as appservice:
        await appservice.inbox.accept("1", body(message("$doomed"), message("$next")))
        handled = await connector.wait_for(1, within=15)
        await appservice.inbox.dispatcher.wait_idle(10)
        assert [e.event_id for e in handled] == ["$next"]
        assert appservice.inbox.failed == 1
        counts = await InboxStore(database).counts()
        assert counts.failed == 1  # kept with its error for the admin, not silently dropped


async def test_a_stuck_room_does_not_hold_up_other_rooms(database: Database) -> None:
    release = asyncio.Event()
    handled: list[str] = []
    five_fast = asyncio.Event()

    async def handler(item: object) -> None:
        event = getattr(item, "event", None)
        assert isinstance(event, MatrixEvent)
        if event.room_id == "!slow:localhost":
            await release.wait()
        handled.append(event.event_id)
        if len(handled) == 5:
            five_fast.set()

    inbox = Inbox(InboxStore(database), handler)
    await inbox.start()
    try:
        await inbox.accept("1", body(
            message("$slow", room="!slow:localhost"),
            *(message(f"$fast{i}", room="!fast:localhost") for i in range(5)),
        ))
        await asyncio.wait_for(five_fast.wait(), 10)
        assert handled == [f"$fast{i}" for i in range(5)]
        release.set()
        assert await inbox.dispatcher.wait_idle(10)
        assert handled[-1] == "$slow"
    finally:
        release.set()
        await inbox.stop()


async def test_handled_rows_are_pruned_after_the_retention(database: Database) -> None:
    store = InboxStore(database)
    async with running_appservice(database) as appservice:
        await appservice.inbox.accept("1", body(message("$old1"), message("$old2"), "bad entry"))
        await appservice.connector.wait_for(2)
        await appservice.inbox.dispatcher.wait_idle(10)
    # running_appservice stopped the inbox, which flushed the done marks.
    before = await store.counts()
    assert (before.done, before.rejected) == (2, 1)
    removed = await store.prune(older_than_ms=2**62)
    assert removed == 2  # the newest row stays, so its id is never handed out again
    after = await store.counts()
    assert (after.pending, after.done, after.rejected) == (0, 0, 1)


async def test_pending_rows_are_never_pruned(database: Database) -> None:
    store = InboxStore(database)
    parsed = parse_transaction_body(body(message("$waiting")))
    await store.store_transaction("1", parsed.fingerprint, parsed.rows)
    assert await store.prune(older_than_ms=2**62) == 0
    assert (await store.counts()).pending == 1


async def test_after_a_crash_only_what_was_not_handled_is_replayed(database_url: str) -> None:
    database = await Database.open(database_url)
    release = asyncio.Event()
    handled_first_run: list[str] = []

    async def quick_room_only(item: object) -> None:
        event = getattr(item, "event", None)
        assert isinstance(event, MatrixEvent)
        if event.room_id == "!stuck:localhost":
            await release.wait()
        handled_first_run.append(event.event_id)

    first = Inbox(InboxStore(database), quick_room_only)
    await first.start()
    await first.accept("1", body(
        *(message(f"$quick{i}", room="!quick:localhost") for i in range(10)),
        *(message(f"$stuck{i}", room="!stuck:localhost") for i in range(3)),
    ))
    await first.accept("2", body(*(message(f"$later{i}", room="!quick:localhost") for i in range(5))))
    # Progress is written with the next commit or within a quarter second; wait for it.
    store = InboxStore(database)

    async def progress_written() -> int:
        done = (await store.counts()).done
        assert done >= 15, f"{done} of the 15 quick events recorded as done"
        return done

    await eventually(progress_written, timeout=10, what="the inbox's progress to be written")
    await first.stop(grace_seconds=0)  # "crash": the stuck room never finished
    await database.close()

    reopened = await Database.open(database_url)
    try:
        async with running_appservice(reopened) as appservice:
            replayed = await appservice.connector.wait_for(3)
            await appservice.inbox.dispatcher.wait_idle(10)
            assert [e.event_id for e in replayed] == ["$stuck0", "$stuck1", "$stuck2"]
            assert sorted(handled_first_run) == sorted(
                [f"$quick{i}" for i in range(10)] + [f"$later{i}" for i in range(5)]
            )
        # Everything is handled now: a third start replays nothing.
        async with running_appservice(reopened) as appservice:
            assert await appservice.inbox.dispatcher.wait_idle(5)
            assert appservice.connector.events == []
        counts = await InboxStore(reopened).counts()
        assert (counts.pending, counts.done) == (0, 18)
    finally:
        await reopened.close()


class SlowConnector(RecordingConnector):
    """Records events, each after a pause, and the most events ever queued at once."""

    def __init__(self, inbox_probe: list[Inbox]) -> None:
        super().__init__()
        self.inbox_probe = inbox_probe
        self.most_queued = 0

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        self.most_queued = max(self.most_queued, self.inbox_probe[0].dispatcher.queued)
        await asyncio.sleep(0.001)  # a connector doing I/O; not synchronisation
        await super().handle_matrix_event(event)


async def test_a_flood_waits_in_the_database_and_is_handled_in_order(database: Database) -> None:
    probe: list[Inbox] = []
    connector = SlowConnector(probe)
    rooms = [f"!room{r}:localhost" for r in range(3)]
    async with running_appservice(database, connector=connector, max_queued=100) as appservice:
        probe.append(appservice.inbox)
        sent: list[dict[str, object]] = []
        for txn in range(12):
            events = [message(f"$flood{txn}-{i}", room=rooms[i % 3]) for i in range(50)]
            sent.extend(events)
            result = await appservice.inbox.accept(f"flood{txn}", body(*events))
            assert result.stored == 50
        spilled_during_flood = appservice.inbox.spilled
        handled = await connector.wait_for(600, within=60)
        await appservice.inbox.dispatcher.wait_idle(10)
        assert spilled_during_flood  # 600 events for 100 places: most waited in the database
        assert not appservice.inbox.spilled
        assert connector.most_queued <= 100
        for room in rooms:
            assert [e.event_id for e in handled if e.room_id == room] == [
                e["event_id"] for e in sent if e["room_id"] == room
            ]
        assert len({e.event_id for e in handled}) == 600


async def test_a_backlog_larger_than_memory_is_replayed_in_order_after_a_restart(database_url: str) -> None:
    database = await Database.open(database_url)
    parked = Inbox(InboxStore(database), _never_called, max_queued=100)
    await parked.start()
    await parked.stop(grace_seconds=0)  # nothing handled: a bridge that crashed at once
    store = InboxStore(database)
    events = [message(f"$backlog{i}", room=f"!r{i % 4}:localhost") for i in range(450)]
    for start in range(0, 450, 90):
        parsed = parse_transaction_body(body(*events[start:start + 90]))
        await store.store_transaction(f"b{start}", parsed.fingerprint, parsed.rows)
    try:
        async with running_appservice(database, max_queued=100) as appservice:
            assert appservice.inbox.spilled
            handled = await appservice.connector.wait_for(450, within=60)
            assert [e.event_id for e in handled if e.room_id == "!r1:localhost"] == [
                f"$backlog{i}" for i in range(1, 450, 4)
            ]
            assert len({e.event_id for e in handled}) == 450
    finally:
        await database.close()


async def _never_called(_item: object) -> None:
    raise AssertionError("no event should reach this handler")


async def test_ids_are_never_reused_after_everything_was_pruned(database_url: str) -> None:
    """A row id handed out again would sit under the floor: treated as handled, never replayed."""
    database = await Database.open(database_url)
    try:
        async with running_appservice(database) as appservice:
            await appservice.inbox.accept("1", body(message("$old1"), message("$old2")))
            await appservice.connector.wait_for(2)
        store = InboxStore(database)
        await store.prune(older_than_ms=2**62)
        stuck = asyncio.Event()

        async def never_finishes(_item: object) -> None:
            await stuck.wait()

        crashing = Inbox(InboxStore(database), never_finishes)
        await crashing.start()
        await crashing.accept("2", body(message("$new1"), message("$new2")))
        await crashing.stop(grace_seconds=0)
        async with running_appservice(database) as appservice:
            replayed = await appservice.connector.wait_for(2)
            assert [e.event_id for e in replayed] == ["$new1", "$new2"]
    finally:
        await database.close()
