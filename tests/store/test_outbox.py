"""The outbox toward Matrix (sends stored once, replayed until done) and the message map beside
it (written behind, read through, committed with the sends' "sent" marks), on SQLite and
PostgreSQL."""

from __future__ import annotations

from bridgekit.store import Database
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.ghosts import GhostProfile


async def test_an_emitted_message_is_stored_once(database: Database) -> None:
    outbox = BridgeStores(database).outbox
    first = await outbox.add("net", "chat", "key-1", {"text": "hi"})
    assert first is not None
    assert await outbox.add("net", "chat", "key-1", {"text": "hi"}) is None  # emitted twice: stored once
    assert [entry.idempotency_key async for entry in outbox.pending()] == ["key-1"]


async def test_the_map_written_behind_is_read_through_and_lands_in_the_database(database: Database) -> None:
    stores = BridgeStores(database)
    entry = await stores.outbox.add("net", "chat", "key-1", {"text": "hi"})
    assert entry is not None
    stores.messages.map_remote_message(entry.portal_id, "m1", "$e1", sender_user_id="@g:hs", sender_remote_id="bob",
                                       ts=1, reply_to_remote_id=None, send_txn_id=entry.idempotency_key)
    stores.outbox.mark_done(entry, "$e1")
    # Read at once: the pending row is flushed first, never missed.
    assert await stores.messages.event_for(entry.portal_id, "m1") == "$e1"
    assert await stores.messages.remote_id_for("$e1") == "m1"
    assert (await stores.outbox.counts()).get("sent") == 1  # the "sent" mark came with the map row
    outcome = await stores.outbox.outcome("key-1")
    assert outcome is not None
    assert (outcome.state, outcome.event_id) == ("sent", "$e1")
    fresh = BridgeStores(database)  # another run: only what was committed
    assert await fresh.messages.event_for(entry.portal_id, "m1") == "$e1"
    assert [e.idempotency_key async for e in fresh.outbox.pending()] == []


async def test_a_send_is_pending_until_marked_done_and_failed_after_its_last_attempt(database: Database) -> None:
    stores = BridgeStores(database)
    entry = await stores.outbox.add("net", "chat", "key-1", {"text": "hi"})
    assert entry is not None
    await stores.outbox.record_attempt(entry.id, "boom", final=False)
    outcome = await stores.outbox.outcome("key-1")
    assert outcome is not None
    assert (outcome.state, outcome.last_error) == ("pending", "boom")
    assert [e.attempts async for e in stores.outbox.pending()] == [1]  # replayed, its attempts counted
    await stores.outbox.record_attempt(entry.id, "boom again", final=True)
    assert [e async for e in stores.outbox.pending()] == []
    assert await stores.outbox.outcome("never emitted") is None


async def test_sends_to_the_network_are_known_as_ours_across_runs(database: Database) -> None:
    stores = BridgeStores(database)
    portal = await stores.portals.link_portal("net", "chat", "!room:hs")
    stores.messages.map_matrix_message(portal.id, "r1", "$m1", "@alice:hs")
    assert stores.messages.sent_by_us(portal.id, "r1")
    assert not stores.messages.sent_by_us(portal.id, "r2")
    await stores.flush()
    restarted = BridgeStores(database)
    assert not restarted.messages.sent_by_us(portal.id, "r1")
    await restarted.messages.load_recent_sends()
    assert restarted.messages.sent_by_us(portal.id, "r1")  # an echo arriving after a restart is still an echo


async def test_reactions_are_found_to_take_them_back_either_way(database: Database) -> None:
    stores = BridgeStores(database)
    portal = await stores.portals.link_portal("net", "chat", "!room:hs")
    stores.messages.map_matrix_message(portal.id, "r1", "$m1", "@alice:hs")
    message = await stores.messages.mapped_by_event("$m1")
    assert message is not None
    await stores.messages.add_reaction(message.id, "bob", "👍", "$like")
    assert await stores.messages.take_reaction(message.id, "bob", "👍") == "$like"
    assert await stores.messages.take_reaction(message.id, "bob", "👍") is None  # taken once
    await stores.messages.add_reaction(message.id, "@alice:hs", "🎉", "$party")
    taken = await stores.messages.take_reaction_by_event("$party")
    assert taken is not None
    assert (taken[0].remote_id, taken[1], taken[2]) == ("r1", "@alice:hs", "🎉")
    assert await stores.messages.take_reaction_by_event("$party") is None


async def test_the_portal_memory_follows_links_unlinks_and_relay_switches(database: Database) -> None:
    portals = BridgeStores(database).portals
    assert await portals.portal_for_room("!room:hs") is None
    portal = await portals.link_portal("net", "chat", "!room:hs")
    assert (await portals.portal_for_room("!room:hs")) == portal  # not the remembered "no portal"
    assert await portals.relay_enabled(portal.id, default=True)
    await portals.set_relay(portal.id, False)
    assert not await portals.relay_enabled(portal.id, default=True)
    await portals.unlink_room("!room:hs")
    assert await portals.portal_for_room("!room:hs") is None
    unlinked = await portals.portal("net", "chat")
    assert unlinked is not None
    assert unlinked.unlinked


async def test_ghost_profiles_are_remembered_across_runs(database: Database) -> None:
    ghosts = BridgeStores(database).ghosts
    assert await ghosts.profile("net", "bob", with_avatar=True) == GhostProfile()  # never profiled
    await ghosts.remember_name("net", "bob", "@_net_bob:hs", "Bob")
    await ghosts.remember_avatar("net", "bob", "@_net_bob:hs", "https://example.org/bob.png", None)
    restarted = BridgeStores(database).ghosts
    stored = await restarted.profile("net", "bob", with_avatar=True)
    assert (stored.name, stored.avatar) == ("Bob", "https://example.org/bob.png")
    assert (await restarted.profile("net", "bob", with_avatar=False)).avatar is None  # not read unless asked
