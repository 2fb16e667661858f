"""The few Redis calls the keeper and the bridge make, typed: the ``redis`` package's own types
allow bytes, ints and None everywhere, while both sides use ``decode_responses=True`` (strings)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RETRY_S = 1.0
TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
"""Redis restarting or out of reach for a moment: the loops wait and try again."""

Entry = tuple[str, dict[str, str]]


async def ensure_group(redis: Redis, stream: str, group: str, *, start: str = "0") -> None:
    """The consumer group, from the stream's ``start`` (``$``: its end), the stream made if it
    does not exist; an existing group is left where it is."""
    try:
        await redis.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def read_group(redis: Redis, group: str, consumer: str, stream: str, position: str, *, count: int,
                     block_ms: int | None) -> list[Entry]:
    """``position`` "0": this consumer's entries taken but not acknowledged; ">": new ones."""
    answer = cast(Any, await redis.xreadgroup(group, consumer, {stream: position}, count=count, block=block_ms))
    return _entries(answer)


async def read(redis: Redis, stream: str, after: str, *, count: int, block_ms: int) -> list[Entry]:
    answer = cast(Any, await redis.xread({stream: after}, count=count, block=block_ms))
    return _entries(answer)


async def newest_id(redis: Redis, stream: str) -> str:
    newest = cast(Any, await redis.xrevrange(stream, count=1))
    return str(newest[0][0]) if newest else "0-0"


async def hash_all(redis: Redis, key: str) -> dict[str, str]:
    return cast(dict[str, str], await cast(Any, redis.hgetall(key)))


async def set_members(redis: Redis, key: str) -> list[str]:
    return sorted(cast(set[str], await cast(Any, redis.smembers(key))))


async def hash_set(redis: Redis, key: str, field: str, value: str) -> None:
    await cast(Any, redis.hset(key, field, value))


async def hash_delete(redis: Redis, key: str, field: str) -> None:
    await cast(Any, redis.hdel(key, field))


async def until_done(what: str, attempt: Callable[[], Awaitable[None]],
                     stopped: Callable[[], bool] = lambda: False) -> None:
    """``attempt()`` until it gets through to Redis (Redis restarting: nothing is dropped), or
    until ``stopped()`` (the process is stopping: what is left is done again at the next start)."""
    while not stopped():
        try:
            await attempt()
            return
        except TRANSIENT as error:
            log.warning("%s: Redis unreachable (%s); trying again in %.0f s", what, error, RETRY_S)
            await asyncio.sleep(RETRY_S)


def _entries(answer: Any) -> list[Entry]:
    if not answer:
        return []
    # RESP2: [[stream, [(id, fields), ...]]]; RESP3: {stream: [[(id, fields), ...]]}
    items = next(iter(answer.values()))[0] if isinstance(answer, dict) else answer[0][1]
    return [(str(entry), dict(fields or {})) for entry, fields in items]


__all__ = [
    "TRANSIENT",
    "Entry",
    "ensure_group",
    "hash_all",
    "hash_delete",
    "hash_set",
    "newest_id",
    "read",
    "read_group",
    "set_members",
    "until_done",
]
