"""OutboxStore: durable sends toward Matrix, the message map (written behind, read through), and
the portal memory, on SQLite and PostgreSQL."""

from __future__ import annotations

from bridgekit.store import Database
from bridgekit.store.outbox import OutboxStore


async def test_an_emitted_message_is_stored_once(database: Database) -> None:
    outbox = OutboxStore(database)
    first = await outbox.add("net", "chat", "key-1", {"text": "hi"})
    assert first is not None
    assert await outbox.add("net", "chat", "key-1", {"text": "hi"}) is None  # emitted twice: stored once
    assert [entry.idempotency_key async for entry in outbox.pending()] == ["key-1"]


async def test_the_map_written_behind_is_read_through_and_lands_in_the_database(database: Database) -> None:
    outbox = OutboxStore(database)
    entry = await outbox.add("net", "chat", "key-1", {"text": "hi"})
    assert entry is not None
    await outbox.mark_sent(entry, event_id="$e1", remote_id="m1", sender_user_id="@g:hs", sender_remote_id="bob",
                           ts=1, reply_to_remote_id=None)
    # Read at once: the pending row is flushed first, never missed.
    assert await outbox.event_for(entry.portal_id, "m1") == "$e1"
    assert await outbox.remote_id_for("$e1") == "m1"
    await outbox.flush()
    assert (await outbox.counts()).get("sent") == 1
    fresh = OutboxStore(database)  # another run: only what was committed
    assert await fresh.event_for(entry.portal_id, "m1") == "$e1"
    assert [e.idempotency_key async for e in fresh.pending()] == []


async def test_sends_to_the_network_are_known_as_ours_across_runs(database: Database) -> None:
    outbox = OutboxStore(database)
    portal = await outbox.link_portal("net", "chat", "!room:hs")
    await outbox.map_matrix_message(portal.id, "r1", "$m1", "@alice:hs")
    assert outbox.sent_by_us(portal.id, "r1")
    assert not outbox.sent_by_us(portal.id, "r2")
    await outbox.flush()
    restarted = OutboxStore(database)
    assert not restarted.sent_by_us(portal.id, "r1")
    await restarted.load_recent_sends()
    assert restarted.sent_by_us(portal.id, "r1")  # an echo arriving after a restart is still an echo


async def test_the_portal_memory_follows_links_unlinks_and_relay_switches(database: Database) -> None:
    outbox = OutboxStore(database)
    assert await outbox.portal_for_room("!room:hs") is None
    portal = await outbox.link_portal("net", "chat", "!room:hs")
    assert (await outbox.portal_for_room("!room:hs")) == portal  # not the remembered "no portal"
    assert await outbox.relay_enabled(portal.id, default=True)
    await outbox.set_relay(portal.id, False)
    assert not await outbox.relay_enabled(portal.id, default=True)
    await outbox.unlink_room("!room:hs")
    assert await outbox.portal_for_room("!room:hs") is None
    unlinked = await outbox.portal("net", "chat")
    assert unlinked is not None
    assert unlinked.unlinked
