"""KeyValueStore: JSON values per (network, key)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bridgekit.store import Database, KeyValue, KeyValueStore
from bridgekit.store import kv as kv_module


async def test_values_round_trip_and_are_replaced(database: Database) -> None:
    kv = KeyValueStore(database)
    assert await kv.get("irc", "casemapping") is None
    assert await kv.get("irc", "casemapping", "rfc1459") == "rfc1459"

    await kv.set("irc", "casemapping", "ascii")
    await kv.set("irc", "isupport", {"NICKLEN": 30, "CHANTYPES": ["#", "&"], "away": None})
    await kv.set("webhook", "casemapping", 7)
    assert await kv.get("irc", "casemapping") == "ascii"
    assert await kv.get("irc", "isupport") == {"NICKLEN": 30, "CHANTYPES": ["#", "&"], "away": None}
    assert await kv.get("webhook", "casemapping") == 7

    await kv.set("irc", "casemapping", "strict-rfc1459")
    assert await kv.get("irc", "casemapping") == "strict-rfc1459"


async def test_delete_removes_one_value(database: Database) -> None:
    kv = KeyValueStore(database)
    await kv.set("irc", "a", 1)
    await kv.set("irc", "b", 2)
    await kv.delete("irc", "a")
    await kv.delete("irc", "never-set")
    assert await kv.get("irc", "a") is None
    assert await kv.get("irc", "b") == 2


async def test_values_survive_a_restart(database_url: str) -> None:
    db = await Database.open(database_url)
    await KeyValueStore(db).set("irc", "casemapping", "ascii")
    await db.close()
    db = await Database.open(database_url)
    try:
        assert await KeyValueStore(db).get("irc", "casemapping") == "ascii"
    finally:
        await db.close()


class _Clock:
    """The store's clock, moved by the test (no sleeping)."""

    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms


async def test_values_with_a_time_to_live_expire_and_are_deleted(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(1_800_000_000_000)
    monkeypatch.setattr(kv_module, "now_ms", clock)
    kv = KeyValueStore(database)
    await kv.set("irc", "text:old", {"text": "long"}, ttl_seconds=60)
    await kv.set("irc", "casemapping", "ascii")
    await kv.set("irc", "text:renewed", "x", ttl_seconds=60)
    await kv.set("irc", "text:renewed", "kept")  # set again without a TTL: kept for good

    clock.ms += 59_000
    assert await kv.get("irc", "text:old") == {"text": "long"}
    clock.ms += 2_000
    assert await kv.get("irc", "text:old", "gone") == "gone"
    assert await kv.get("irc", "casemapping") == "ascii"
    assert await kv.get("irc", "text:renewed") == "kept"

    # The rows go with a later write of an expiring value (at most once an hour).
    clock.ms += kv_module.PURGE_INTERVAL_MS
    await kv.set("irc", "text:new", "fresh", ttl_seconds=60)
    async with database.read() as connection:
        keys = set((await connection.execute(select(KeyValue.key))).scalars())
    assert keys == {"casemapping", "text:renewed", "text:new"}
