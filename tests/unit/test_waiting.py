"""``eventually()``, the one way tests wait: it returns what it waited for, and a wait that
never ends says what it was for and what it saw last."""

from __future__ import annotations

import pytest

from bridgekit.testing.waiting import eventually


async def test_eventually_returns_the_first_true_value_of_a_function_or_an_async_function() -> None:
    calls: list[int] = []

    def grows() -> list[int]:
        calls.append(len(calls))
        return calls if len(calls) >= 3 else []

    assert await eventually(grows) == [0, 1, 2]

    async def answer() -> str:
        return "ready"

    assert await eventually(answer) == "ready"


async def test_a_wait_that_never_ends_names_what_it_waited_for_and_the_last_value() -> None:
    queue = [3, 1]
    with pytest.raises(AssertionError, match=r"waited 0.05 s for a big number; last seen: \[\]"):
        await eventually(lambda: [n for n in queue if n > 5], timeout=0.05, what="a big number")


async def test_a_check_may_say_why_it_is_not_true_yet() -> None:
    async def idle() -> bool:
        queued = 2
        assert queued == 0, f"{queued} events still queued"
        return True

    with pytest.raises(AssertionError, match="last seen: 2 events still queued"):
        await eventually(idle, timeout=0.05, what="the inbox to be idle")
