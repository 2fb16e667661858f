"""KeyValueStore: JSON values per (network, key)."""

from __future__ import annotations

from bridgekit.store import Database, KeyValueStore


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
