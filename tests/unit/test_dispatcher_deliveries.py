"""A handler may leave a delivery running (``defer_done``, what the core does with a session's
``Accepted``): the room's worker moves on, but the room's progress passes the event only once it is
delivered, in order; a failed delivery gives the event up, and one still running at shutdown
leaves it unhandled (replayed at the next start)."""

from __future__ import annotations

import asyncio

from bridgekit.core.dispatcher import RoomDispatcher, WorkItem, defer_done
from bridgekit.testing.waiting import until


class Room:
    """A dispatcher whose handler defers the deliveries the test hands it, and a log of what
    happened, in order."""

    def __init__(self) -> None:
        self.deliveries: dict[int, asyncio.Future[None]] = {}
        self.log: list[str] = []
        self.dispatcher = RoomDispatcher(self._handle, on_done=self._done, on_failure=self._failed, max_attempts=1)

    async def _handle(self, item: WorkItem) -> None:
        self.log.append(f"handled {item.row_id}")
        delivery = self.deliveries.get(item.row_id)
        if delivery is not None:
            assert defer_done(delivery)

    def _done(self, item: WorkItem) -> None:
        self.log.append(f"done {item.row_id}")

    async def _failed(self, item: WorkItem, error: BaseException, final: bool) -> None:
        self.log.append(f"given up {item.row_id}: {error}" if final else f"failed {item.row_id}")

    def enqueue(self, *row_ids: int) -> None:
        self.dispatcher.enqueue(WorkItem(row_id, "pdu", "!room", None) for row_id in row_ids)


async def test_the_room_moves_on_but_progress_waits_for_the_delivery() -> None:
    room = Room()
    delivered = room.deliveries[1] = asyncio.get_running_loop().create_future()
    room.enqueue(1, 2, 3)
    assert not await room.dispatcher.wait_idle(0.2)
    assert room.log == ["handled 1", "handled 2", "handled 3"]  # nobody waited for row 1's delivery
    assert room.dispatcher.oldest_queued_row_id() == 1  # the floor stays below it
    assert room.dispatcher.queued == 3
    delivered.set_result(None)
    assert await room.dispatcher.wait_idle(1)
    assert room.log[3:] == ["done 1", "done 2", "done 3"]
    assert room.dispatcher.oldest_queued_row_id() is None


async def test_a_failed_delivery_gives_its_event_up_in_the_rooms_order() -> None:
    room = Room()
    lost = room.deliveries[1] = asyncio.get_running_loop().create_future()
    room.enqueue(1, 2)
    lost.set_exception(ConnectionError("the connection was closed"))
    assert await room.dispatcher.wait_idle(1)
    assert room.log == ["handled 1", "handled 2", "given up 1: the connection was closed", "done 2"]


async def test_a_cancelled_delivery_gives_its_event_up_and_the_room_goes_on() -> None:
    room = Room()
    cancelled = room.deliveries[1] = asyncio.get_running_loop().create_future()
    room.enqueue(1, 2)
    cancelled.cancel()
    assert await room.dispatcher.wait_idle(1)
    assert room.log == ["handled 1", "handled 2", "given up 1: its delivery was cancelled", "done 2"]


async def test_a_delivery_still_running_at_shutdown_leaves_its_event_unhandled() -> None:
    room = Room()
    room.deliveries[1] = asyncio.get_running_loop().create_future()  # never finishes
    room.enqueue(1, 2)
    await until(lambda: len(room.log) == 2)
    await room.dispatcher.stop(grace_seconds=0.1)
    assert room.log == ["handled 1", "handled 2"]  # neither is done: both are replayed at the next start


async def test_outside_a_worker_nobody_takes_the_delivery() -> None:
    async def delivery() -> None:
        return None

    pending = delivery()
    assert not defer_done(pending)
    await pending  # the caller awaits it itself


async def test_stop_leaves_no_settler_behind_for_an_event_handled_during_the_grace() -> None:
    """A handler that finishes while stop() waits leaves its delivery to a settler started then:
    stop() must wait for (or cancel) that one too, so nothing reports to a stopped store later."""
    entered, gate = asyncio.Event(), asyncio.Event()
    never = asyncio.get_running_loop().create_future()
    log: list[str] = []

    async def handle(item: WorkItem) -> None:
        entered.set()
        await gate.wait()
        assert defer_done(never)

    async def failed(item: WorkItem, error: BaseException, final: bool) -> None:
        log.append(f"given up {item.row_id}")

    dispatcher = RoomDispatcher(handle, on_done=lambda item: log.append(f"done {item.row_id}"),
                                on_failure=failed, max_attempts=1)
    dispatcher.enqueue([WorkItem(1, "pdu", "!room", None)])
    await entered.wait()
    stopping = asyncio.create_task(dispatcher.stop(grace_seconds=0.2))
    await asyncio.sleep(0)  # one turn of the loop (not a wait): stop() has begun its grace
    gate.set()  # the event is handled during the grace; its delivery never finishes
    await stopping
    leftovers = [task for task in asyncio.all_tasks() if task.get_name().startswith("inbox-")]
    assert leftovers == []
    assert log == []  # not done, not given up: replayed at the next start
