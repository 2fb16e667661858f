"""Waiting for a condition that background tasks of the code under test (or a server started by
a fixture) bring about: one helper, :func:`eventually`, instead of hand-written deadline loops."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = ..., what: str = ..., interval: float = ...,  # noqa: ASYNC109
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], *, timeout: float = ..., what: str = ..., interval: float = ...,  # noqa: ASYNC109
) -> T: ...


async def eventually(
    # ``timeout``, not asyncio.timeout around the call: a check in flight is never cut half-way.
    check: Callable[[], Any], *, timeout: float = 5.0, what: str = "the condition",  # noqa: ASYNC109
    interval: float = 0.02,
) -> Any:
    """Call ``check`` (a function or an async function) until it returns something true, and
    return that; fail after ``timeout`` seconds with an AssertionError naming ``what`` was waited
    for and the last value seen. A check may also say why it is not true yet by failing an
    ``assert``: its message is then the last value seen.

    ``check`` runs whole each time: one that is slower than the time left still finishes, so a
    request in flight is never cut half-way."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            last = repr(value)
        except AssertionError as error:
            value, last = None, str(error)
        if value:
            return value
        if loop.time() >= end:
            raise AssertionError(f"waited {timeout:g} s for {what}; last seen: {last}")
        await asyncio.sleep(interval)


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """``eventually(condition, timeout=within)``, for the callers that came before it."""
    await eventually(condition, timeout=within)
