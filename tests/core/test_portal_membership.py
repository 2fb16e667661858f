"""A Matrix user joining a portal opens their own connection beside the room's later events, not
before them: the opening may wait for the network's connection pacing. Through the real
RoomDispatcher (the room's order, the deferred conclusion), with a session opening held by a test."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

from bridgekit.connector import NetworkConnector, RemoteSession
from bridgekit.core.dispatcher import RoomDispatcher, WorkItem
from bridgekit.core.portal_membership import PortalMembership
from bridgekit.core.routing import Route, RouteKind
from bridgekit.core.sessions import Sessions
from bridgekit.events import MatrixEvent, parse_client_event
from bridgekit.ids import ChatID, UserID
from bridgekit.store.portals import PortalRow
from bridgekit.testing.waiting import eventually

ROOM = "!portal:hs.test"
ALICE = UserID("@alice:hs.test")
PORTAL = PortalRow(id=1, network="irc", remote_id="#chan", room_id=ROOM, name="#chan")


class HeldSessions:
    """The two calls PortalMembership makes on Sessions."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str, str]] = set()

    def hold(self, network: str, user_id: UserID, room_id: str) -> None:
        self.held.add((network, user_id, room_id))

    def release(self, network: str, user_id: UserID, room_id: str) -> None:
        self.held.discard((network, user_id, room_id))


class Connection:
    """Alice's own connection: it joins and leaves chats."""

    def __init__(self) -> None:
        self.joined: list[str] = []
        self.left: list[str] = []

    async def join_chat(self, chat_id: ChatID) -> None:
        self.joined.append(chat_id)

    async def leave_chat(self, chat_id: ChatID, reason: str | None) -> None:
        self.left.append(chat_id)


def member(membership: str, n: int) -> MatrixEvent:
    return parse_client_event({
        "type": "m.room.member", "event_id": f"$m{n}", "room_id": ROOM, "sender": ALICE, "state_key": ALICE,
        "origin_server_ts": n, "content": {"membership": membership},
    })


def message(n: int) -> MatrixEvent:
    return parse_client_event({
        "type": "m.room.message", "event_id": f"$t{n}", "room_id": ROOM, "sender": "@bob:hs.test",
        "origin_server_ts": n, "content": {"msgtype": "m.text", "body": "hello"},
    })


class Harness:
    def __init__(self) -> None:
        self.sessions = HeldSessions()
        self.connection = Connection()
        self.may_open = asyncio.Event()
        self.opened = False
        self.handled: list[str] = []
        self.done: list[int] = []

        async def route(_event: MatrixEvent, _portal: PortalRow) -> Route:
            # As the bridge's routing does: it opens the virtual connection to learn whether the
            # network gives one, and the opening waits for the network's connection pacing.
            await self.may_open.wait()
            self.opened = True
            return Route(RouteKind.VIRTUAL)

        async def session(_kind: RouteKind, _network: str, _user: UserID, _name: str) -> RemoteSession:
            return cast(RemoteSession, self.connection)  # open already

        async def display_name(_event: MatrixEvent) -> str:
            return "Alice"

        def own_session(_network: str, _user: UserID) -> RemoteSession | None:
            return cast(RemoteSession, self.connection) if self.opened else None

        connector = cast(NetworkConnector, SimpleNamespace(join_on_portal_join=True))
        self.membership = PortalMembership(
            cast(Sessions, self.sessions), lambda _network: connector, route, session, display_name, own_session)

        async def handle(item: WorkItem) -> None:
            event: MatrixEvent = item.event
            if event.type == "m.room.member":
                await self.membership.follow(event, PORTAL)
            self.handled.append(event.event_id)

        async def on_failure(item: WorkItem, error: BaseException, final: bool) -> None:
            raise AssertionError(f"row {item.row_id} failed: {error!r}")

        self.dispatcher = RoomDispatcher(handle, on_done=lambda item: self.done.append(item.row_id),
                                         on_failure=on_failure)

    def enqueue(self, *events: MatrixEvent) -> None:
        self.dispatcher.enqueue(WorkItem(n, "pdu", ROOM, event) for n, event in enumerate(events, start=1))


async def test_the_rooms_next_events_are_handled_while_the_joiners_connection_opens() -> None:
    h = Harness()
    h.enqueue(member("join", 1), message(2), message(3))
    await eventually(lambda: h.handled == ["$m1", "$t2", "$t3"])
    assert h.connection.joined == []
    assert h.done == [], "the join counts as handled only once its connection is open (a restart replays it)"
    h.may_open.set()
    await eventually(lambda: h.done == [1, 2, 3])
    assert h.connection.joined == ["#chan"]
    assert h.sessions.held == {("irc", ALICE, ROOM)}
    await h.dispatcher.stop()


async def test_a_leave_before_the_connection_opened_voids_the_join() -> None:
    h = Harness()
    h.enqueue(member("join", 1), member("leave", 2))
    await eventually(lambda: h.handled == ["$m1", "$m2"])
    h.may_open.set()
    await eventually(lambda: h.done == [1, 2])
    assert h.connection.joined == [], "she left before her connection was up: it must not join the chat"
    assert h.sessions.held == set()
    await h.dispatcher.stop()


async def test_outside_a_worker_the_join_is_done_before_follow_returns() -> None:
    h = Harness()
    h.may_open.set()
    await h.membership.follow(member("join", 1), PORTAL)
    assert h.connection.joined == ["#chan"]
    assert h.sessions.held == {("irc", ALICE, ROOM)}
