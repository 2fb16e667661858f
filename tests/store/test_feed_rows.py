"""Feeds in the portal table, on SQLite and PostgreSQL: a feed row keeps room_id NULL and names
its room in ``meta``, so finding, linking and unlinking a room's portal never touch it."""

from __future__ import annotations

from bridgekit.store import Database
from bridgekit.store.portals import PortalStore

ROOM, UPGRADED = "!room:hs.test", "!upgraded:hs.test"


async def test_a_feed_row_stays_beside_the_rooms_portal_whatever_happens_to_it(database: Database) -> None:
    portals = PortalStore(database)
    await portals.link_portal("irc", "#chat", ROOM)
    feed = await portals.link_feed("hooks", ROOM, ROOM)
    assert (feed.room_id, feed.feed_room, feed.posts_into) == (None, ROOM, ROOM)
    assert await portals.link_feed("hooks", ROOM, ROOM) == feed  # again: unchanged
    await portals.link_feed("rss", "planet", ROOM)

    assert (await portals.portal_for_room(ROOM)).remote_id == "#chat"  # type: ignore[union-attr]
    await portals.link_portal("irc", "#other", ROOM)
    assert await portals.unlink_room(ROOM) is not None
    assert await portals.portal_for_room(ROOM) is None
    assert sorted(row.network for row in await portals.feeds_into(ROOM)) == ["hooks", "rss"]
    assert await portals.portal_chats("hooks") == []

    await portals.move_feed(feed.id, UPGRADED)
    assert (await portals.portal("hooks", ROOM)).posts_into == UPGRADED  # type: ignore[union-attr]
    assert [row.network for row in await portals.feeds_into(ROOM)] == ["rss"]
    # Linked as a portal, a feed stops being one.
    portal = await portals.link_portal("hooks", ROOM, UPGRADED)
    assert (portal.room_id, portal.feed_room) == (UPGRADED, None)
