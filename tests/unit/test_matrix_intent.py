"""Intent: what a ghost or the bot does on the homeserver, and what the memory remembers.

A small fake homeserver (MockTransport) answers by route and records every request; an
in-memory MatrixStateMemory stands in for the SQL one, so "remembered" means "asked the memory,
not the homeserver".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bridgekit.errors import MatrixForbidden
from bridgekit.ids import ContentURI, EventID, RoomID, UserID
from bridgekit.matrix import MatrixClient, MatrixStateMemory
from tests.support.memory import InMemoryState

HS = "http://hs.test"
BOT = UserID("@bridgebot:hs.test")
GHOST = UserID("@_irc_alice:hs.test")
ROOM = RoomID("!portal:hs.test")
ROOM_PATH = "%21portal%3Ahs.test"

class FakeHomeserver:
    """Answers a request from the first route whose method matches and whose path starts with
    the route's encoded path prefix (its answers used in order, the last one repeating);
    anything else gets ``200 {}``. Records every request."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, list[httpx.Response]]] = []
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path_prefix: str, *answers: httpx.Response) -> None:
        self.routes.append((method, path_prefix, list(answers)))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, prefix, answers in self.routes:
            if request.method == method and raw_path(request).startswith(prefix):
                return answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(200, json={})

    def sent(self) -> list[tuple[str, str, str | None]]:
        """What was asked: (method, encoded path, masqueraded user)."""
        return [(r.method, raw_path(r), r.url.params.get("user_id")) for r in self.requests]


def raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode().partition("?")[0]


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


MakeClient = Callable[..., MatrixClient]


@pytest.fixture
def homeserver() -> FakeHomeserver:
    return FakeHomeserver()


@pytest.fixture
def memory() -> InMemoryState:
    return InMemoryState()


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def make_client(
    homeserver: FakeHomeserver, memory: InMemoryState, waits: Waits,
) -> AsyncIterator[MakeClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(homeserver))

    def make(state: MatrixStateMemory | None = None, **options: Any) -> MatrixClient:
        return MatrixClient(
            http, homeserver_url=HS, as_token="as-secret", bot_user_id=BOT,
            memory=state or memory, sleep=waits.sleep, jitter=lambda: 1.0, **options,
        )

    yield make
    await http.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> MatrixClient:
    return make_client()


def reply(status: int = 200, **body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- registration --------------------------------------------------------------------------------


async def test_ensure_registered_registers_the_ghost_without_logging_in(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    await client.intent(GHOST).ensure_registered()

    (request,) = homeserver.requests
    assert (request.method, raw_path(request)) == ("POST", "/_matrix/client/v3/register")
    assert request.headers["Authorization"] == "Bearer as-secret"
    assert body_of(request) == {
        "type": "m.login.application_service", "username": "_irc_alice", "inhibit_login": True,
    }


async def test_a_user_that_already_exists_counts_as_registered(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    homeserver.on("POST", "/_matrix/client/v3/register", reply(
        400, errcode="M_USER_IN_USE", error="taken",
    ))

    await client.intent(GHOST).ensure_registered()

    assert await memory.is_registered(GHOST)


async def test_a_refused_registration_raises_and_is_not_remembered(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    homeserver.on("POST", "/_matrix/client/v3/register", reply(
        400, errcode="M_EXCLUSIVE", error="not in your namespace",
    ))

    with pytest.raises(MatrixForbidden):
        await client.intent(GHOST).ensure_registered()

    assert not await memory.is_registered(GHOST)


async def test_the_memory_not_the_intent_remembers_registration_and_membership(
    make_client: MakeClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", reply(room_id=ROOM))

    await make_client().intent(GHOST).ensure_joined(ROOM)
    # A new client (as after a restart) sharing the same memory asks the homeserver nothing.
    await make_client().intent(GHOST).ensure_registered()
    await make_client().intent(GHOST).ensure_joined(ROOM)

    assert homeserver.sent() == [
        ("POST", "/_matrix/client/v3/register", None),
        ("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", GHOST),
    ]


async def test_a_fresh_memory_means_asking_the_homeserver_again(
    make_client: MakeClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", reply(room_id=ROOM))

    await make_client(InMemoryState()).intent(GHOST).ensure_joined(ROOM)
    await make_client(InMemoryState()).intent(GHOST).ensure_joined(ROOM)

    assert len(homeserver.requests) == 4


# -- membership ----------------------------------------------------------------------------------


async def test_a_ghost_not_invited_is_invited_by_the_bot_and_joins(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    memory.registered.add(GHOST)
    homeserver.on(
        "POST", f"/_matrix/client/v3/join/{ROOM_PATH}",
        reply(403, errcode="M_FORBIDDEN", error="You are not invited"), reply(room_id=ROOM),
    )

    await client.intent(GHOST).ensure_joined(ROOM)

    assert homeserver.sent() == [
        ("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", GHOST),
        ("POST", f"/_matrix/client/v3/rooms/{ROOM_PATH}/invite", BOT),
        ("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", GHOST),
    ]
    assert body_of(homeserver.requests[1]) == {"user_id": GHOST}
    assert await memory.is_joined(ROOM, GHOST)


async def test_a_send_refused_for_want_of_membership_joins_again_on_the_next_attempt(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    # Remembered as joined, but the join was lost (state resolution undid it): the send's 403
    # must not repeat until the message is given up.
    memory.registered.add(GHOST)
    memory.joined.add((ROOM, GHOST))
    homeserver.on("PUT", f"/_matrix/client/v3/rooms/{ROOM_PATH}/send/", reply(
        403, errcode="M_FORBIDDEN", error="User not in room"), reply(event_id="$sent"))
    homeserver.on("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", reply(room_id=ROOM))
    ghost = client.intent(GHOST)

    with pytest.raises(MatrixForbidden):
        await ghost.send_text(ROOM, "hello", txn_id="m1")
    assert not await memory.is_joined(ROOM, GHOST)
    await ghost.ensure_joined(ROOM)
    assert await ghost.send_text(ROOM, "hello", txn_id="m1") == EventID("$sent")

    assert [(method, where.split("/send/")[0]) for method, where, _user in homeserver.sent()] == [
        ("PUT", f"/_matrix/client/v3/rooms/{ROOM_PATH}"),
        ("POST", f"/_matrix/client/v3/join/{ROOM_PATH}"),
        ("PUT", f"/_matrix/client/v3/rooms/{ROOM_PATH}"),
    ]


async def test_the_bot_refused_a_join_gives_up_at_once(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    memory.registered.add(BOT)
    homeserver.on("POST", f"/_matrix/client/v3/join/{ROOM_PATH}", reply(
        403, errcode="M_FORBIDDEN", error="banned",
    ))

    with pytest.raises(MatrixForbidden):
        await client.bot.ensure_joined(ROOM)

    assert len(homeserver.requests) == 1
    assert not await memory.is_joined(ROOM, BOT)


async def test_joining_by_alias_remembers_the_room_id(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    homeserver.on("POST", "/_matrix/client/v3/join/%23irc_chat%3Ahs.test", reply(room_id=ROOM))

    room_id = await client.intent(GHOST).join(RoomID("#irc_chat:hs.test"), via=["other.test"])

    assert room_id == ROOM
    assert await memory.is_joined(ROOM, GHOST)
    assert homeserver.requests[0].url.params.get_list("via") == ["other.test"]


async def test_leaving_and_kicking_forget_the_membership(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    other = UserID("@_irc_bob:hs.test")
    memory.joined |= {(ROOM, GHOST), (ROOM, other)}

    await client.intent(GHOST).leave(ROOM, reason="quit")
    await client.bot.kick(ROOM, other, reason="netsplit over")

    assert memory.joined == set()
    assert body_of(homeserver.requests[0]) == {"reason": "quit"}
    assert body_of(homeserver.requests[1]) == {"user_id": other, "reason": "netsplit over"}


async def test_create_room_sends_what_was_asked_and_remembers_the_creator_joined(
    client: MatrixClient, homeserver: FakeHomeserver, memory: InMemoryState,
) -> None:
    homeserver.on("POST", "/_matrix/client/v3/createRoom", reply(room_id=ROOM))
    bridge_state = {
        "type": "m.bridge", "state_key": "irc://x", "content": {"protocol": {"id": "irc"}},
    }

    room_id = await client.bot.create_room(
        alias_localpart="_irc_chat", name="#chat", topic="hello", invitees=[GHOST],
        initial_state=[bridge_state], preset="public_chat",
    )

    assert room_id == ROOM
    assert await memory.is_joined(ROOM, BOT)
    assert body_of(homeserver.requests[0]) == {
        "room_alias_name": "_irc_chat", "name": "#chat", "topic": "hello",
        "preset": "public_chat", "invite": [GHOST], "initial_state": [bridge_state],
        "is_direct": False,
    }


# -- sending -------------------------------------------------------------------------------------

SEND = f"/_matrix/client/v3/rooms/{ROOM_PATH}/send/m.room.message/"


async def test_the_same_idempotency_key_gives_the_same_transaction_id(
    client: MatrixClient, make_client: MakeClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("PUT", SEND, reply(event_id="$sent"))
    ghost = client.intent(GHOST)

    for key in ["irc:42", "irc:42", "irc:43"]:
        await ghost.send_message(ROOM, {"msgtype": "m.text", "body": "hi"}, txn_id=key)
    # A new client, as after a restart, derives the same ID.
    await make_client(InMemoryState()).intent(GHOST).send_message(
        ROOM, {"msgtype": "m.text", "body": "hi"}, txn_id="irc:42",
    )

    first, again, other, after_restart = (raw_path(r) for r in homeserver.requests)
    assert first.startswith(SEND)
    assert first == again == after_restart
    assert other != first


async def test_sends_without_a_key_get_distinct_transaction_ids(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("PUT", SEND, reply(event_id="$sent"))

    await client.intent(GHOST).send_message(ROOM, {"body": "one"})
    await client.intent(GHOST).send_message(ROOM, {"body": "two"})

    first, second = (raw_path(r) for r in homeserver.requests)
    assert first != second


@pytest.mark.parametrize("key", [None, "irc:42"])
async def test_a_rate_limited_send_waits_then_retries_with_the_same_transaction_id(
    client: MatrixClient, homeserver: FakeHomeserver, waits: Waits, key: str | None,
) -> None:
    homeserver.on(
        "PUT", SEND,
        reply(429, errcode="M_LIMIT_EXCEEDED", retry_after_ms=1500), reply(event_id="$hello"),
    )

    event_id = await client.intent(GHOST).send_message(ROOM, {"body": "hello"}, txn_id=key)

    first, second = homeserver.requests
    assert event_id == EventID("$hello")
    assert waits.seconds == [1.5]
    assert raw_path(first) == raw_path(second)
    assert first.content == second.content


async def test_a_send_after_a_network_error_keeps_its_transaction_id(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    attempts: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(raw_path(request))
        if len(attempts) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"event_id": "$once"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    async with http:
        flaky_client = MatrixClient(
            http, homeserver_url=HS, as_token="t", bot_user_id=BOT, memory=InMemoryState(),
            sleep=Waits().sleep,
        )
        await flaky_client.intent(GHOST).send_message(ROOM, {"body": "hi"})

    assert len(attempts) == 2
    assert attempts[0] == attempts[1]


async def test_ts_massages_the_timestamp_of_sends_and_state(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("PUT", "/_matrix/client/v3/rooms/", reply(event_id="$e"))
    ghost = client.intent(GHOST)

    await ghost.send_message(ROOM, {"body": "said yesterday"}, ts=1_700_000_000_000)
    await ghost.send_state(ROOM, "m.room.topic", "", {"topic": "t"}, ts=1_700_000_000_001)
    await ghost.send_message(ROOM, {"body": "said now"})

    stamped, state, now = homeserver.requests
    assert stamped.url.params["ts"] == "1700000000000"
    assert state.url.params["ts"] == "1700000000001"
    assert raw_path(state) == f"/_matrix/client/v3/rooms/{ROOM_PATH}/state/m.room.topic/"
    assert "ts" not in now.url.params
    assert stamped.url.params["user_id"] == GHOST


async def test_a_text_message_always_says_whom_it_mentions(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("PUT", SEND, reply(event_id="$e"))
    bob = UserID("@bob:hs.test")
    ghost = client.intent(GHOST)

    await ghost.send_text(ROOM, "bob: look")
    await ghost.send_text(ROOM, "bob: look", html="<b>bob</b>: look", mentions=[bob])
    await ghost.send_text(ROOM, "yes", reply_to=EventID("$question"), msgtype="m.notice")

    plain, mentioning, answer = (body_of(r) for r in homeserver.requests)
    assert plain == {"msgtype": "m.text", "body": "bob: look", "m.mentions": {}}
    assert mentioning == {
        "msgtype": "m.text", "body": "bob: look", "format": "org.matrix.custom.html",
        "formatted_body": "<b>bob</b>: look", "m.mentions": {"user_ids": [bob]},
    }
    assert answer == {
        "msgtype": "m.notice", "body": "yes", "m.mentions": {},
        "m.relates_to": {"m.in_reply_to": {"event_id": "$question"}},
    }


async def test_state_is_read_from_its_encoded_path(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("GET", "/_matrix/client/v3/rooms/", reply(bridgebot=BOT))

    content = await client.bot.get_state(ROOM, "m.bridge", "irc://libera/#chat")

    assert content == {"bridgebot": BOT}
    assert raw_path(homeserver.requests[0]) == (
        f"/_matrix/client/v3/rooms/{ROOM_PATH}/state/m.bridge/irc%3A%2F%2Flibera%2F%23chat"
    )


async def test_an_event_is_fetched_by_its_encoded_id(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("GET", "/_matrix/client/v3/rooms/", reply(event_id="$a/b", origin_server_ts=5))

    event = await client.bot.get_event(ROOM, EventID("$a/b"))

    assert event["origin_server_ts"] == 5
    expected = f"/_matrix/client/v3/rooms/{ROOM_PATH}/event/%24a%2Fb"
    assert raw_path(homeserver.requests[0]) == expected


async def test_redact_uses_a_transaction_id_derived_from_the_key(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("PUT", f"/_matrix/client/v3/rooms/{ROOM_PATH}/redact/", reply(event_id="$r"))

    await client.intent(GHOST).redact(ROOM, EventID("$abc/+="), reason="deleted", txn_id="del:1")
    await client.intent(GHOST).redact(ROOM, EventID("$abc/+="), reason="deleted", txn_id="del:1")

    first, second = (raw_path(r) for r in homeserver.requests)
    assert first == second
    assert first.startswith(f"/_matrix/client/v3/rooms/{ROOM_PATH}/redact/%24abc%2F%2B%3D/")
    assert body_of(homeserver.requests[0]) == {"reason": "deleted"}


# -- profile and identity ------------------------------------------------------------------------


async def test_profile_changes_act_on_the_intents_own_user(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    ghost = client.intent(GHOST)

    await ghost.set_displayname("alice (IRC)")
    await ghost.set_avatar_url(ContentURI("mxc://hs.test/abc"))

    name, avatar = homeserver.requests
    assert raw_path(name) == "/_matrix/client/v3/profile/%40_irc_alice%3Ahs.test/displayname"
    assert body_of(name) == {"displayname": "alice (IRC)"}
    assert body_of(avatar) == {"avatar_url": "mxc://hs.test/abc"}
    assert name.url.params["user_id"] == GHOST


async def test_whoami_says_who_the_homeserver_thinks_we_are(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("GET", "/_matrix/client/v3/account/whoami", reply(user_id=GHOST, is_guest=False))

    me = await client.intent(GHOST).whoami()

    assert (me.user_id, me.device_id, me.is_guest) == (GHOST, None, False)


# -- media ---------------------------------------------------------------------------------------


async def test_upload_sends_the_bytes_and_returns_the_content_uri(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on("POST", "/_matrix/media/v3/upload", reply(content_uri="mxc://hs.test/m1"))

    uri = await client.intent(GHOST).upload_media(b"\x89PNG", "image/png", "cat.png")

    (request,) = homeserver.requests
    assert uri == ContentURI("mxc://hs.test/m1")
    assert request.content == b"\x89PNG"
    assert request.headers["Content-Type"] == "image/png"
    assert request.url.params["filename"] == "cat.png"


async def test_download_goes_through_the_authenticated_media_endpoint(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on(
        "GET", "/_matrix/client/v1/media/download/",
        httpx.Response(200, content=b"\x89PNG", headers={"Content-Type": "image/png"}),
    )

    uri = ContentURI("mxc://other.test/m1")
    data, content_type = await client.intent(GHOST).download_media(uri)

    (request,) = homeserver.requests
    assert (data, content_type) == (b"\x89PNG", "image/png")
    assert raw_path(request) == "/_matrix/client/v1/media/download/other.test/m1"
    assert request.headers["Authorization"] == "Bearer as-secret"


async def test_download_follows_the_homeservers_redirect(
    client: MatrixClient, homeserver: FakeHomeserver,
) -> None:
    homeserver.on(
        "GET", "/_matrix/client/v1/media/download/",
        httpx.Response(307, headers={"Location": "http://hs.test/files/m1"}),
    )
    homeserver.on("GET", "/files/m1", httpx.Response(200, content=b"data"))

    data, content_type = await client.intent(GHOST).download_media(ContentURI("mxc://hs.test/m1"))

    assert (data, content_type) == (b"data", "application/octet-stream")


async def test_download_refuses_what_is_not_a_content_uri(client: MatrixClient) -> None:
    with pytest.raises(ValueError, match="not a Matrix content URI"):
        await client.intent(GHOST).download_media(ContentURI("https://example.org/cat.png"))
