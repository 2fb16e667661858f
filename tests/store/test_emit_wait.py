"""``emit(..., wait=True)``: the core's real remote delivery and outbox, on SQLite and PostgreSQL,
posting to a homeserver faked with httpx.MockTransport (the end-to-end story against Synapse is
tests/integration/test_remote_to_matrix.py). What a waiting caller gets back: the event ID once
posted, the same ID for the same event emitted again (also after a restart), a typed failure,
and a clean end when the bridge stops."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from bridgekit.core.remote_delivery import RemoteDelivery
from bridgekit.errors import DeliveryFailed, DeliveryInterrupted
from bridgekit.events import REMOTE_EVENT_KINDS, RemoteDelete, RemoteEdit, RemoteMessage, RemoteReaction, RemoteTyping
from bridgekit.ids import ChatID, MessageID, RemoteUserID, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.store import Database
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.testing.waiting import until
from tests.support.memory import InMemoryState
from tests.unit.test_remote_events_json import EXAMPLES

NETWORK = "net"
ROOM = RoomID("!portal:hs.test")
CHAT = ChatID("chat")
BOB = RemoteUserID("bob")
GHOST = "@_net_bob:hs.test"  # the default prefix _net_ names the network: the sender follows it
SEND = re.compile(r"/rooms/[^/]+/(send/[^/]+|redact/[^/]+)/(?P<txn>[^/?]+)")


class FakeHomeserver:
    """Answers every request; sends get an event ID per transaction ID, as Synapse deduplicates."""

    def __init__(self) -> None:
        self.events: dict[str, str] = {}
        self.ghost_posts: list[str] = []
        """Event IDs the ghost posted, each once (retried transaction IDs are not new posts)."""
        self.refuse_sends = False
        self.hold_sends: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = SEND.search(request.url.path)
        if sent is None:
            return httpx.Response(200, json={"room_id": ROOM})
        if self.hold_sends is not None:
            await self.hold_sends.wait()
        if self.refuse_sends:
            return httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "not in this room"})
        if sent["txn"] not in self.events:
            self.events[sent["txn"]] = f"$event{len(self.events)}"
            if request.url.params.get("user_id") == GHOST:
                self.ghost_posts.append(self.events[sent["txn"]])
        return httpx.Response(200, json={"event_id": self.events[sent["txn"]]})


@pytest.fixture
def homeserver() -> FakeHomeserver:
    return FakeHomeserver()


@pytest.fixture
async def http(homeserver: FakeHomeserver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(homeserver)) as client:
        yield client


async def delivery(database: Database, http: httpx.AsyncClient, *, max_attempts: int = 5) -> RemoteDelivery:
    matrix = MatrixClient(http, homeserver_url="http://hs.test", as_token="as", bot_user_id=UserID("@bot:hs.test"),
                          memory=InMemoryState())
    remote = RemoteDelivery(BridgeStores(database), matrix, server_name="hs.test", ghost_prefixes={NETWORK: "_net_"},
                            max_attempts=max_attempts)
    await remote.start()
    await remote.link_portal(NETWORK, "chat", ROOM)
    return remote


@contextlib.asynccontextmanager
async def running(
    database: Database, http: httpx.AsyncClient, *, max_attempts: int = 5
) -> AsyncIterator[RemoteDelivery]:
    remote = await delivery(database, http, max_attempts=max_attempts)
    try:
        yield remote
    finally:
        await remote.stop()


def message(message_id: str, text: str = "hello") -> RemoteMessage:
    return RemoteMessage(chat_id=CHAT, message_id=MessageID(message_id), sender_id=BOB, text=text)


async def test_a_waiting_emit_returns_the_event_the_message_became(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    async with running(database, http) as remote:
        event_id = await remote.emit(NETWORK, message("m1"), wait=True)
        assert event_id is not None
        assert homeserver.ghost_posts == [event_id]
        assert await remote.emit(NETWORK, message("m2")) is None  # without wait: stored, nothing to answer
        # Events that post nothing answer None once done.
        assert await remote.emit(NETWORK, RemoteTyping(chat_id=CHAT, sender_id=BOB, typing=True), wait=True) is None
        assert remote.waiting == 0


async def test_a_message_marked_by_bot_is_posted_by_the_bridge_bot_not_a_ghost(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    async with running(database, http) as remote:
        line = RemoteMessage(chat_id=CHAT, message_id=MessageID("b1"), sender_id=BOB, text="bob: hi", by_bot=True)
        event_id = await remote.emit(NETWORK, line, wait=True)
        assert event_id in homeserver.events.values()
        assert homeserver.ghost_posts == []  # the bot said it (a relay-style line naming bob)


async def test_edits_reactions_and_deletions_answer_with_the_events_they_became(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    async with running(database, http) as remote:
        original = await remote.emit(NETWORK, message("m1"), wait=True)
        correction = RemoteEdit(chat_id=CHAT, message_id=MessageID("m1"), edit_id="e1", sender_id=BOB, text="hello!")
        edit = await remote.emit(NETWORK, correction, wait=True)
        reaction = await remote.emit(
            NETWORK, RemoteReaction(chat_id=CHAT, message_id=MessageID("m1"), sender_id=BOB, emoji="👍"), wait=True
        )
        deletion = await remote.emit(
            NETWORK, RemoteDelete(chat_id=CHAT, message_id=MessageID("m1"), sender_id=BOB), wait=True
        )
        assert [original, edit, reaction, deletion] == homeserver.ghost_posts  # four events, each its own
        # An edit of a message that was never bridged posts nothing: None, not a hang.
        unknown = RemoteEdit(chat_id=CHAT, message_id=MessageID("never"), edit_id="e1", sender_id=BOB, text="?")
        assert await remote.emit(NETWORK, unknown, wait=True) is None


async def test_the_same_event_emitted_again_answers_with_the_same_id_also_after_a_restart(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    async with running(database, http) as remote:
        first = await remote.emit(NETWORK, message("m1"), wait=True)
        # At once (the send's bookkeeping may still be in the write-behind buffer) and together.
        again = await asyncio.gather(*(remote.emit(NETWORK, message("m1"), wait=True) for _ in range(3)))
        assert again == [first] * 3
    async with running(database, http) as restarted:
        assert await restarted.emit(NETWORK, message("m1"), wait=True) == first
        assert homeserver.ghost_posts == [first]  # posted once


async def test_emits_waiting_behind_a_slow_send_keep_the_chats_order(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    remote = await delivery(database, http)
    homeserver.hold_sends = asyncio.Event()
    try:
        first = asyncio.create_task(remote.emit(NETWORK, message("m0"), wait=True))
        await until(lambda: remote.waiting == 1)
        for i in (1, 2):  # stored behind m0, in this order, without waiting
            await remote.emit(NETWORK, message(f"m{i}"))
        # Waiting now for events stored earlier (emitted again) waits for their turn too.
        later = [asyncio.create_task(remote.emit(NETWORK, message(f"m{i}"), wait=True)) for i in (2, 1, 0)]
        await until(lambda: remote.waiting == 4)
        assert not any(task.done() for task in [first, *later])
        homeserver.hold_sends.set()
        answers = [await first, *await asyncio.gather(*later)]
        m0, m1, m2 = homeserver.ghost_posts  # posted once each, in the order stored
        assert answers == [m0, m2, m1, m0]
    finally:
        await remote.stop()


async def test_a_send_that_fails_every_attempt_raises_a_typed_failure_also_when_asked_again(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    homeserver.refuse_sends = True
    async with running(database, http, max_attempts=1) as remote:
        with pytest.raises(DeliveryFailed, match="M_FORBIDDEN") as failure:
            await remote.emit(NETWORK, message("m1"), wait=True)
        assert failure.value.__cause__ is not None
        with pytest.raises(DeliveryFailed, match="M_FORBIDDEN"):
            await remote.emit(NETWORK, message("m1"), wait=True)
        assert remote.waiting == 0


async def test_stopping_the_bridge_ends_the_waits_and_the_event_is_posted_at_the_next_start(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    remote = await delivery(database, http)
    homeserver.hold_sends = asyncio.Event()
    waiting = asyncio.create_task(remote.emit(NETWORK, message("m1"), wait=True))
    await until(lambda: remote.waiting == 1)
    cancelled = asyncio.create_task(remote.emit(NETWORK, message("m2"), wait=True))
    await until(lambda: remote.waiting == 2 and remote.dispatcher.queued == 2)  # m2 stored, waiting behind m1
    cancelled.cancel()  # a caller that gives up (an HTTP client hung up) leaves nothing behind
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert remote.waiting == 1
    await remote.stop(grace_seconds=0.05)
    with pytest.raises(DeliveryInterrupted):
        await waiting
    assert remote.waiting == 0
    with pytest.raises(DeliveryInterrupted):  # after the stop: stored, but nobody will post it in this run
        await remote.emit(NETWORK, message("m3"), wait=True)

    homeserver.hold_sends.set()
    async with running(database, http) as restarted:
        answers = [await restarted.emit(NETWORK, message(f"m{i}"), wait=True) for i in (1, 2, 3)]
        assert answers == homeserver.ghost_posts  # replayed in order, each posted once


async def test_every_remote_event_type_has_a_handler_that_posts_it(
    database: Database, http: httpx.AsyncClient, homeserver: FakeHomeserver
) -> None:
    # The examples of the JSON round trip, one per type: each reaches its handler and is done
    # (a type without a handler would fail its send, and this wait would raise DeliveryFailed).
    async with running(database, http) as remote:
        events = [replace(event, chat_id=ChatID("chat")) for event in EXAMPLES]
        replied_to = RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID("m0"),
                                   sender_id=RemoteUserID("bob"), text="first")
        answers = {}
        for event in [replied_to, *events]:
            answers[type(event).__name__] = await remote.emit(NETWORK, event, wait=True)
        assert set(answers) == {cls.__name__ for cls in REMOTE_EVENT_KINDS}
        posted = {name for name, event_id in answers.items() if event_id is not None}
        assert posted == {"RemoteMessage", "RemoteEdit", "RemoteDelete"}  # the reaction example takes one back
        assert remote.failed == 0
