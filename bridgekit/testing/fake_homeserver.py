"""A fake homeserver for unit tests of the bridge's middle layer: the Client-Server API the
appservice uses, answered in memory through ``httpx.MockTransport``.

It answers the calls :mod:`bridgekit.matrix.client` and :mod:`bridgekit.matrix.intent` make the
way Synapse does where a bridge would notice the difference: a resent transaction ID gives back
the first event (and posts nothing new), a user must be registered before the appservice acts as
it, and must be in a room to send, set state, type or mark read there; a private room refuses a
join without an invite; kicks, bans, state and redactions of others' events need power (rooms
are version 12, as Synapse makes them: their creators are above every level); a state
event the room lacks is a 404 ``M_NOT_FOUND``; registering a taken name is ``M_USER_IN_USE``.

Everything the bridge sent is recorded, in order, for the test to read: room events (with the
sender and transaction ID), state, memberships and invites, registrations, profile changes,
typing and read markers. :meth:`FakeHomeserver.fail` makes an endpoint answer with an error a
number of times; :meth:`FakeHomeserver.hold` holds its requests until the test lets them go.

Only for unit tests: the end-to-end tests run against a real Synapse (``tests/servers``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bridgekit.ids import UserID
from bridgekit.matrix import MatrixClient, MatrixStateMemory
from bridgekit.matrix.retry import RetryPolicy
from bridgekit.telemetry import BridgeMetrics
from bridgekit.testing.fake_endpoints import ENDPOINTS, HANDLERS, error, parse
from bridgekit.testing.fake_rooms import ROOM_VERSION, Receipt, Request, RoomEvent, RoomLedger, Typing


@dataclass
class _Failure:
    times: int
    status: int
    errcode: str
    error: str


class FakeHomeserver(RoomLedger):
    """The homeserver of ``server_name``, its appservice acting with ``as_token`` as ``bot_user_id``.

    Connect a :class:`~bridgekit.matrix.MatrixClient` with :meth:`matrix_client` (or give
    :attr:`transport` to your own ``httpx.AsyncClient``).
    """

    url = "http://homeserver.test"

    def __init__(
        self, server_name: str = "hs.test", *, bot_localpart: str = "bridgebot", as_token: str = "as-token",  # noqa: S107 - a fake's token
    ) -> None:
        super().__init__(server_name)
        self.bot_user_id = UserID(f"@{bot_localpart}:{server_name}")
        self.as_token = as_token
        self.transport = httpx.MockTransport(self._handle)
        self.users: set[str] = {self.bot_user_id}
        self.registrations: list[str] = []
        """User IDs the appservice registered, in order."""
        self.profile_changes: list[tuple[str, str, str]] = []
        """(user, "displayname" or "avatar_url", new value), in order."""
        self.typing: list[Typing] = []
        self.receipts: list[Receipt] = []
        self.aliases: dict[str, str] = {}
        self.media: dict[str, tuple[bytes, str]] = {}
        self.requests: list[Request] = []
        """Every request answered, in order (a held request is listed once answered)."""
        self.held: Counter[str] = Counter()
        """Requests waiting at a :meth:`hold`, by endpoint."""
        self.transactions: dict[tuple[str, str], RoomEvent] = {}
        """(user, transaction ID) -> the event it made: the same again gives the same event."""
        self._failures: dict[str, _Failure] = {}
        self._holds: dict[str, asyncio.Event] = {}

    # -- set-up and control -------------------------------------------------------------------

    def matrix_client(
        self, http: httpx.AsyncClient, memory: MatrixStateMemory, *, metrics: BridgeMetrics | None = None,
    ) -> MatrixClient:
        """A client of this homeserver as the appservice. It sends each request once (no
        retries, so no waiting): a failure asked for with :meth:`fail` reaches the caller, whose
        own handling is what a test looks at. ``metrics`` counts its requests."""
        return MatrixClient(
            http, homeserver_url=self.url, as_token=self.as_token, bot_user_id=self.bot_user_id,
            memory=memory, retry=RetryPolicy(max_retries=0), metrics=metrics,
        )

    def add_user(self, user_id: str, displayname: str | None = None) -> None:
        """A user that exists on the homeserver (a person on Matrix, say)."""
        self.users.add(user_id)
        if displayname is not None:
            self.profiles.setdefault(user_id, {})["displayname"] = displayname

    def add_room(self, creator: str, *, public: bool = True, members: tuple[str, ...] = (),
                 power: Mapping[str, int] | None = None, version: str = ROOM_VERSION) -> str:
        """A room made by ``creator``, with ``members`` joined and the power levels in ``power``;
        its ID."""
        self.add_user(creator)
        room = self.new_room(creator, public=public, levels_override={"users": dict(power or {})},
                              version=version)
        for member in members:
            self.add_user(member)
            self.set_membership(room, member, member, "join")
        return room.room_id

    def invite(self, room_id: str, inviter: str, invitee: str, *, is_direct: bool = False) -> str:
        """``inviter`` (a person, not the bridge) invites ``invitee``; the invite's event ID."""
        self.set_membership(self.rooms[room_id], inviter, invitee, "invite", is_direct=is_direct)
        return self.events[-1].event_id

    def fail(self, endpoint: str, *, times: int = 1, status: int = 500, errcode: str = "M_UNKNOWN",
             error: str = "failure asked for by the test") -> None:
        """The next ``times`` requests to ``endpoint`` (``send``, ``join``, ``state``, ...: see
        :data:`ENDPOINTS`) answer ``status`` with ``errcode``."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"no endpoint {endpoint!r}; known: {', '.join(sorted(ENDPOINTS))}")
        self._failures[endpoint] = _Failure(times, status, errcode, error)

    def hold(self, endpoint: str) -> asyncio.Event:
        """Requests to ``endpoint`` wait until the returned event is set."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"no endpoint {endpoint!r}; known: {', '.join(sorted(ENDPOINTS))}")
        gate = self._holds[endpoint] = asyncio.Event()
        return gate

    # -- the API --------------------------------------------------------------------------------

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        call = parse(request, self.bot_user_id)
        if call is None:
            return self._record(request, "?", "", error(404, "M_UNRECOGNIZED", "Unrecognized request"))
        gate = self._holds.get(call.endpoint)
        if gate is not None and not gate.is_set():
            self.held[call.endpoint] += 1
            try:
                await gate.wait()
            finally:
                self.held[call.endpoint] -= 1
        if request.headers.get("Authorization") != f"Bearer {self.as_token}":
            answer = error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
        elif (failure := self._failures.get(call.endpoint)) is not None and failure.times > 0:
            failure.times -= 1
            answer = error(failure.status, failure.errcode, failure.error)
        elif call.user_id not in self.users and call.endpoint not in ("register", "ping"):
            # Synapse: the appservice must register a user before acting as it.
            answer = error(403, "M_FORBIDDEN", f"Application service has not registered this user ({call.user_id})")
        else:
            answer = HANDLERS[call.endpoint](self, call)
        return self._record(request, call.endpoint, call.user_id, answer, call.body)

    def _record(self, request: httpx.Request, endpoint: str, user_id: str, answer: httpx.Response,
                body: Any = None) -> httpx.Response:
        self.requests.append(Request(request.method, endpoint, request.url.path, user_id, body, answer.status_code))
        return answer


__all__ = ["ENDPOINTS", "FakeHomeserver", "Receipt", "Request", "RoomEvent", "Typing"]
