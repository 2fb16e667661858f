"""MatrixClient: authentication, masquerading, typed errors, retries and ping, over MockTransport.

Time is fake: the client's sleep records the waits and advances the fake clock, so a test that
waits five minutes of "homeserver time" runs instantly and can say exactly what was waited.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bridgekit.errors import (
    MatrixBadRequest,
    MatrixConnectionError,
    MatrixForbidden,
    MatrixNotFound,
    MatrixRateLimited,
    MatrixRequestError,
    MatrixServerError,
    MatrixUserInUse,
)
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import MatrixClient, RetryPolicy

HS = "http://hs.test"
BOT = UserID("@bridgebot:hs.test")
GHOST = UserID("@_irc_alice:hs.test")

Answer = httpx.Response | Exception


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class ScriptedHomeserver:
    """Answers requests in order from a script; the last answer repeats."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class NoMemory:
    """The client tests never register or join; any use of the memory is a bug here."""

    async def is_registered(self, user_id: UserID) -> bool:
        raise AssertionError("memory used")

    async def mark_registered(self, user_id: UserID) -> None:
        raise AssertionError("memory used")

    async def is_joined(self, room_id: RoomID, user_id: UserID) -> bool:
        raise AssertionError("memory used")

    async def mark_joined(self, room_id: RoomID, user_id: UserID) -> None:
        raise AssertionError("memory used")

    async def forget_membership(self, room_id: RoomID, user_id: UserID) -> None:
        raise AssertionError("memory used")


MakeClient = Callable[..., MatrixClient]


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[MakeClient]:
    http_clients: list[httpx.AsyncClient] = []

    def make(homeserver: ScriptedHomeserver, **options: Any) -> MatrixClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(homeserver))
        http_clients.append(http)
        options.setdefault("jitter", lambda: 1.0)
        return MatrixClient(
            http, homeserver_url=HS + "/", as_token="as-secret", bot_user_id=BOT,
            memory=NoMemory(), sleep=fake_time.sleep, clock=fake_time.clock, **options,
        )

    yield make
    for http in http_clients:
        await http.aclose()


def ok(body: object = None) -> httpx.Response:
    return httpx.Response(200, json={} if body is None else body)


def error(code: int, errcode: str, message: str = "nope", **extra: object) -> httpx.Response:
    return httpx.Response(code, json={"errcode": errcode, "error": message, **extra})


async def test_token_goes_in_the_header_and_user_id_in_the_query(make_client: MakeClient) -> None:
    homeserver = ScriptedHomeserver(ok({"user_id": GHOST}))
    client = make_client(homeserver)

    await client.request_json("GET", "/_matrix/client/v3/account/whoami", user_id=GHOST)

    (request,) = homeserver.requests
    assert request.headers["Authorization"] == "Bearer as-secret"
    assert "access_token" not in request.url.params
    assert "as-secret" not in str(request.url)
    assert request.url.params["user_id"] == GHOST
    assert str(request.url).startswith("http://hs.test/_matrix/client/v3/account/whoami?")


async def test_without_a_user_the_request_acts_as_the_appservice(make_client: MakeClient) -> None:
    homeserver = ScriptedHomeserver(ok())
    await make_client(homeserver).request_json("POST", "/_matrix/client/v3/register", json={})
    assert "user_id" not in homeserver.requests[0].url.params


@pytest.mark.parametrize(
    ("status", "errcode", "expected"),
    [
        (403, "M_FORBIDDEN", MatrixForbidden),
        (403, "M_EXCLUSIVE", MatrixForbidden),
        (401, "M_UNKNOWN_TOKEN", MatrixForbidden),
        (401, "M_MISSING_TOKEN", MatrixForbidden),
        (404, "M_NOT_FOUND", MatrixNotFound),
        (404, "M_UNRECOGNIZED", MatrixNotFound),
        (405, "M_UNRECOGNIZED", MatrixNotFound),
        (429, "M_LIMIT_EXCEEDED", MatrixRateLimited),
        (400, "M_USER_IN_USE", MatrixUserInUse),
        (400, "M_BAD_JSON", MatrixBadRequest),
        (413, "M_TOO_LARGE", MatrixBadRequest),
        (500, "M_UNKNOWN", MatrixServerError),
        (502, "M_BAD_STATUS", MatrixServerError),
    ],
)
async def test_errcodes_become_typed_errors(
    make_client: MakeClient, status: int, errcode: str, expected: type[MatrixRequestError],
) -> None:
    homeserver = ScriptedHomeserver(error(status, errcode, "told you"))
    client = make_client(homeserver, retry=RetryPolicy(max_retries=0))

    with pytest.raises(expected) as caught:
        await client.request_json("GET", "/_matrix/client/v3/somewhere")

    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.errcode) == (status, errcode)
    assert caught.value.message == "told you"
    assert "GET /_matrix/client/v3/somewhere" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "expected", "message"),
    [
        (httpx.Response(502, text="<html><body>Bad Gateway</body></html>"), MatrixServerError,
         "<html><body>Bad Gateway</body></html>"),
        (httpx.Response(404, text="no such page"), MatrixNotFound, "no such page"),
        (httpx.Response(403), MatrixForbidden, "Forbidden"),
        (httpx.Response(400, json=["not", "an", "object"]), MatrixBadRequest,
         '["not","an","object"]'),
    ],
)
async def test_error_answers_without_a_json_errcode_are_still_typed(
    make_client: MakeClient, answer: httpx.Response, expected: type[MatrixRequestError],
    message: str,
) -> None:
    client = make_client(ScriptedHomeserver(answer), retry=RetryPolicy(max_retries=0))

    with pytest.raises(expected) as caught:
        await client.request_json("GET", "/_matrix/client/v3/x")

    assert caught.value.errcode == "M_UNKNOWN"
    assert caught.value.message.replace(" ", "") == message.replace(" ", "")


async def test_a_429_waits_what_the_body_asks_then_succeeds(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(
        error(429, "M_LIMIT_EXCEEDED", retry_after_ms=1500), ok({"a": 1}),
    )

    body = await make_client(homeserver).request_json("PUT", "/_matrix/client/v3/x")

    assert body == {"a": 1}
    assert fake_time.waits == [1.5]
    assert len(homeserver.requests) == 2


async def test_a_429_may_say_how_long_in_the_retry_after_header(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    limited = httpx.Response(
        429, headers={"Retry-After": "2"}, json={"errcode": "M_LIMIT_EXCEEDED"},
    )
    homeserver = ScriptedHomeserver(limited, ok())

    await make_client(homeserver).request_json("GET", "/_matrix/client/v3/x")

    assert fake_time.waits == [2.0]


async def test_rate_limited_for_good_tells_the_header_wait_too(make_client: MakeClient) -> None:
    limited = httpx.Response(
        429, headers={"Retry-After": "7"}, json={"errcode": "M_LIMIT_EXCEEDED"},
    )
    client = make_client(ScriptedHomeserver(limited), retry=RetryPolicy(max_retries=0))

    with pytest.raises(MatrixRateLimited) as caught:
        await client.request_json("GET", "/_matrix/client/v3/x")

    assert caught.value.retry_after_ms == 7000


async def test_a_429_asking_for_hours_waits_only_up_to_the_cap(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(error(429, "M_LIMIT_EXCEEDED", retry_after_ms=36_000_000), ok())

    await make_client(homeserver).request_json("GET", "/_matrix/client/v3/x")

    assert fake_time.waits == [300.0]


async def test_a_429_that_never_ends_raises_rate_limited_with_the_servers_wish(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(error(429, "M_LIMIT_EXCEEDED", retry_after_ms=10))
    client = make_client(homeserver, retry=RetryPolicy(max_retries=2))

    with pytest.raises(MatrixRateLimited) as caught:
        await client.request_json("GET", "/_matrix/client/v3/x")

    assert caught.value.retry_after_ms == 10
    assert fake_time.waits == [0.01, 0.01]
    assert len(homeserver.requests) == 3


async def test_5xx_backs_off_exponentially_up_to_the_cap_then_raises(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(error(503, "M_UNKNOWN", "overloaded"))

    with pytest.raises(MatrixServerError) as caught:
        await make_client(homeserver).request_json("GET", "/_matrix/client/v3/x")

    assert caught.value.status == 503
    assert len(homeserver.requests) == 9  # the default: 8 retries
    assert fake_time.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]


async def test_backoff_jitter_never_shortens_a_wait_below_half_the_step(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(httpx.Response(500), httpx.Response(500), ok())
    client = make_client(homeserver, jitter=lambda: 0.0, retry=RetryPolicy(backoff_base=2.0))

    await client.request_json("GET", "/_matrix/client/v3/x")

    assert fake_time.waits == [1.0, 2.0]


async def test_a_network_error_is_retried(make_client: MakeClient, fake_time: FakeTime) -> None:
    homeserver = ScriptedHomeserver(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok({"done": True}),
    )

    body = await make_client(homeserver).request_json("GET", "/_matrix/client/v3/x")

    assert body == {"done": True}
    assert fake_time.waits == [0.5, 1.0]


async def test_a_homeserver_that_stays_unreachable_raises_a_connection_error(
    make_client: MakeClient,
) -> None:
    homeserver = ScriptedHomeserver(httpx.ConnectError("refused"))
    client = make_client(homeserver, retry=RetryPolicy(max_retries=3))

    with pytest.raises(MatrixConnectionError, match=r"cannot reach the homeserver at http://hs"):
        await client.request_json("GET", "/_matrix/client/v3/x")

    assert len(homeserver.requests) == 4


async def test_other_4xx_are_never_retried(make_client: MakeClient, fake_time: FakeTime) -> None:
    homeserver = ScriptedHomeserver(error(400, "M_BAD_JSON"), ok())

    with pytest.raises(MatrixBadRequest):
        await make_client(homeserver).request_json("PUT", "/_matrix/client/v3/x")

    assert len(homeserver.requests) == 1
    assert fake_time.waits == []


async def test_a_retry_resends_the_same_request(make_client: MakeClient) -> None:
    homeserver = ScriptedHomeserver(httpx.Response(502), ok())
    client = make_client(homeserver)

    await client.request_json(
        "PUT", "/_matrix/client/v3/rooms/%21r%3Ahs.test/send/m.room.message/t1", user_id=GHOST,
        json={"body": "hi"},
    )

    first, second = homeserver.requests
    assert first.url == second.url
    assert json.loads(first.content) == json.loads(second.content) == {"body": "hi"}


async def test_ping_posts_the_transaction_id_and_returns_the_duration(
    make_client: MakeClient,
) -> None:
    homeserver = ScriptedHomeserver(ok({"duration_ms": 42}))

    duration = await make_client(homeserver).ping("irc bridge", "txn-1")

    (request,) = homeserver.requests
    assert duration == 42
    assert request.method == "POST"
    assert request.url.raw_path == b"/_matrix/client/v1/appservice/irc%20bridge/ping"
    assert request.headers["Authorization"] == "Bearer as-secret"
    assert json.loads(request.content) == {"transaction_id": "txn-1"}


@pytest.mark.parametrize(
    ("answer", "expected", "errcode"),
    [
        (error(400, "M_URL_NOT_SET"), MatrixBadRequest, "M_URL_NOT_SET"),
        (error(403, "M_FORBIDDEN"), MatrixForbidden, "M_FORBIDDEN"),
        (error(502, "M_BAD_STATUS", status=500, body="oops"), MatrixServerError, "M_BAD_STATUS"),
        (error(502, "M_CONNECTION_FAILED"), MatrixServerError, "M_CONNECTION_FAILED"),
        (error(504, "M_CONNECTION_TIMEOUT"), MatrixServerError, "M_CONNECTION_TIMEOUT"),
    ],
)
async def test_ping_errors_are_typed_and_sent_once(
    make_client: MakeClient, answer: httpx.Response, expected: type[MatrixRequestError],
    errcode: str,
) -> None:
    homeserver = ScriptedHomeserver(answer)

    with pytest.raises(expected) as caught:
        await make_client(homeserver).ping("irc")

    assert caught.value.errcode == errcode
    assert len(homeserver.requests) == 1
    assert json.loads(homeserver.requests[0].content) == {}


async def test_ping_until_ready_waits_for_a_homeserver_that_is_starting(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(
        httpx.ConnectError("refused"), httpx.ConnectError("refused"),
        error(502, "M_CONNECTION_FAILED"), ok({"duration_ms": 7}),
    )
    client = make_client(homeserver, retry=RetryPolicy(max_retries=0))

    assert await client.ping_until_ready("irc", deadline_seconds=30) == 7
    assert fake_time.waits == [0.5, 1.0, 2.0]


async def test_ping_until_ready_gives_up_at_the_deadline(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(httpx.ConnectError("refused"))
    client = make_client(homeserver, retry=RetryPolicy(max_retries=0))
    start = fake_time.now

    with pytest.raises(MatrixConnectionError):
        await client.ping_until_ready("irc", deadline_seconds=10)

    assert fake_time.now - start == pytest.approx(10)
    assert max(fake_time.waits) <= 10


async def test_ping_until_ready_does_not_wait_for_what_waiting_cannot_fix(
    make_client: MakeClient, fake_time: FakeTime,
) -> None:
    homeserver = ScriptedHomeserver(error(400, "M_URL_NOT_SET"))

    with pytest.raises(MatrixBadRequest):
        await make_client(homeserver).ping_until_ready("irc", deadline_seconds=60)

    assert fake_time.waits == []
