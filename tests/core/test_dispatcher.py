"""The dispatcher under the inbox and the outbox: events of one room are handled one after
another in arrival order, different rooms at the same time (a stuck room holds up no other), and
a failing event is retried, then given up on so its room moves on."""

from __future__ import annotations

import asyncio
import random

from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.testing.waiting import eventually


class Recorder:
    """A handler that takes a while (a varying number of loop turns) and records what it did."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, int]] = []
        self.done: list[int] = []
        self.failures: list[tuple[int, str, bool]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.failing: dict[int, int] = {}
        """Row -> how many more attempts fail."""
        self.waits: list[float] = []
        self.turns = random.Random(7)

    async def handle(self, item: WorkItem) -> None:
        gate = self.gates.get(item.queue_key)
        if gate is not None:
            await gate.wait()
        for _ in range(self.turns.randrange(5)):
            await asyncio.sleep(0)
        if self.failing.get(item.row_id, 0) > 0:
            self.failing[item.row_id] -= 1
            raise RuntimeError(f"row {item.row_id} failed")
        self.handled.append((item.queue_key, item.row_id))

    def on_done(self, item: WorkItem) -> None:
        self.done.append(item.row_id)

    async def on_failure(self, item: WorkItem, error: BaseException, final: bool) -> None:
        self.failures.append((item.row_id, str(error), final))

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def dispatcher(self, max_attempts: int = 3) -> RoomDispatcher:
        return RoomDispatcher(self.handle, on_done=self.on_done, on_failure=self.on_failure,
                              max_attempts=max_attempts, sleep=self.sleep)


def items(rows: list[tuple[int, str]]) -> list[WorkItem]:
    return [WorkItem(row, "pdu", room, None) for row, room in rows]


async def test_each_room_is_handled_in_arrival_order() -> None:
    recorder = Recorder()
    dispatcher = recorder.dispatcher()
    rows = [(row, f"!room{row % 4}") for row in range(1, 81)]
    dispatcher.enqueue(items(rows[:40]))
    await asyncio.sleep(0)  # some handled already while more arrive
    dispatcher.enqueue(items(rows[40:]))
    assert await dispatcher.wait_idle(5)
    for room in {room for _row, room in rows}:
        assert [row for key, row in recorder.handled if key == room] == [row for row, key in rows if key == room]
    assert sorted(recorder.done) == [row for row, _room in rows]


async def test_a_stuck_room_holds_up_no_other_room() -> None:
    recorder = Recorder()
    recorder.gates["!stuck"] = asyncio.Event()
    dispatcher = recorder.dispatcher()
    dispatcher.enqueue(items([(1, "!stuck"), (2, "!quick"), (3, "!stuck"), (4, "!quick"), (5, "!other")]))
    await eventually(lambda: len(recorder.handled) == 3, what="the rooms that are not stuck to be handled")
    assert sorted(recorder.handled) == [("!other", 5), ("!quick", 2), ("!quick", 4)]
    assert [row for key, row in recorder.handled if key == "!quick"] == [2, 4]
    assert dispatcher.active_rooms == 1  # the stuck one, still waiting
    recorder.gates["!stuck"].set()
    assert await dispatcher.wait_idle(5)
    assert [row for key, row in recorder.handled if key == "!stuck"] == [1, 3]


async def test_a_failing_event_is_retried_then_given_up_and_its_room_moves_on() -> None:
    recorder = Recorder()
    recorder.failing = {1: 1, 2: 99}
    dispatcher = recorder.dispatcher(max_attempts=3)
    dispatcher.enqueue(items([(1, "!room"), (2, "!room"), (3, "!room")]))
    assert await dispatcher.wait_idle(5)
    assert recorder.handled == [("!room", 1), ("!room", 3)]  # 1 after a retry; 2 given up; 3 still in order
    assert recorder.failures == [
        (1, "row 1 failed", False),
        (2, "row 2 failed", False), (2, "row 2 failed", False), (2, "row 2 failed", True),
    ]
    assert recorder.waits == [0.5, 0.5, 1.0]  # backoff before each retry, growing per event
    assert recorder.done == [1, 3]
