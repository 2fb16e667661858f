"""A Matrix client for people played by a program: the demo's user, the integration tests' humans
(alice, bob), on httpx.

It keeps a complete, ordered copy of every room timeline it has synced. Synapse answers a
``/sync`` with ``limited: true`` when more events arrived than the timeline limit; the events
before the ones returned were delivered all the same, so they are back-filled with ``/messages``
(backwards from ``prev_batch`` until an already-seen event). Without that a fast burst of
messages looks "lost" to the test although the bridge delivered every one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, Self
from urllib.parse import quote

import httpx

Event = dict[str, Any]
EventPredicate = Callable[[Event], bool]

_C = "/_matrix/client/v3"


class HomeserverInfo(Protocol):
    """What creating a user needs to know about the homeserver."""

    @property
    def url(self) -> str: ...

    @property
    def shared_secret(self) -> str: ...


class MatrixRequestError(RuntimeError):
    """A non-2xx answer, with the Matrix errcode when there is one."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{method} {path} -> {status}: {body}")


def _q(value: str) -> str:
    return quote(value, safe="")


def is_text(body: str) -> EventPredicate:
    """Predicate: an ``m.room.message`` whose body is exactly ``body``."""
    return lambda ev: ev.get("type") == "m.room.message" and ev.get("content", {}).get("body") == body


class MatrixTestClient:
    """One logged-in user; close it with :meth:`aclose` (or ``async with``)."""

    def __init__(
        self, homeserver_url: str, access_token: str, user_id: str, *, timeline_limit: int = 10
    ) -> None:
        self.homeserver_url = homeserver_url
        self.access_token = access_token
        self.user_id = user_id
        self.timeline_limit = timeline_limit
        self._http = httpx.AsyncClient(
            base_url=homeserver_url,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=httpx.Timeout(30.0, read=70.0),
        )
        self._since: str | None = None
        self._timelines: dict[str, list[Event]] = {}
        self._seen: dict[str, set[str]] = {}
        self.invites: dict[str, list[Event]] = {}
        self._answered_invites: set[str] = set()
        self.ephemeral: dict[str, list[Event]] = {}
        """Typing and receipt events per room, as synced (oldest first)."""
        self.limited_syncs = 0

    # ---- creation -----------------------------------------------------------------------------

    @classmethod
    async def create_user(
        cls,
        homeserver: HomeserverInfo,
        localpart: str,
        *,
        admin: bool = False,
        password: str | None = None,
        timeline_limit: int = 10,
    ) -> Self:
        """Register ``localpart`` with the shared-secret admin API and return it logged in."""
        password = password or secrets.token_urlsafe(16)
        async with httpx.AsyncClient(base_url=homeserver.url, timeout=30.0) as http:
            path = "/_synapse/admin/v1/register"
            resp = await http.get(path)
            resp.raise_for_status()
            nonce = resp.json()["nonce"]
            mac = hmac.new(homeserver.shared_secret.encode(), digestmod=hashlib.sha1)
            mac.update(
                b"\x00".join(
                    [nonce.encode(), localpart.encode(), password.encode(),
                     b"admin" if admin else b"notadmin"]
                )
            )
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            resp = await http.post(path, json=body)
            if resp.status_code != 200:
                raise MatrixRequestError("POST", path, resp.status_code, resp.text)
            data = resp.json()
        return cls(homeserver.url, data["access_token"], data["user_id"], timeline_limit=timeline_limit)

    @classmethod
    async def login(cls, homeserver_url: str, localpart: str, password: str, *, timeline_limit: int = 10) -> Self:
        """Log in with a password (a user made earlier, e.g. by a previous run of the demo)."""
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
                "password": password}
        async with httpx.AsyncClient(base_url=homeserver_url, timeout=30.0) as http:
            resp = await http.post(f"{_C}/login", json=body)
            if resp.status_code != 200:
                raise MatrixRequestError("POST", f"{_C}/login", resp.status_code, resp.text)
            data = resp.json()
        return cls(homeserver_url, data["access_token"], data["user_id"], timeline_limit=timeline_limit)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- requests -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        """Send a request; return the decoded JSON or raise :class:`MatrixRequestError`."""
        extra: dict[str, Any] = {}
        if read_timeout is not None:
            extra["timeout"] = httpx.Timeout(30.0, read=read_timeout)
        resp = await self._http.request(method, path, json=json_body, params=params, **extra)
        try:
            body: Any = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code >= 300:
            raise MatrixRequestError(method, path, resp.status_code, body)
        return body

    async def upload(self, data: bytes, content_type: str) -> str:
        """Upload media; returns its ``mxc://`` URI."""
        resp = await self._http.post("/_matrix/media/v3/upload", content=data, headers={"Content-Type": content_type})
        if resp.status_code >= 300:
            raise MatrixRequestError("POST", "/_matrix/media/v3/upload", resp.status_code, resp.text)
        return str(resp.json()["content_uri"])

    async def whoami(self) -> str:
        return str((await self.request("GET", f"{_C}/account/whoami"))["user_id"])

    async def create_room(
        self,
        *,
        name: str | None = None,
        invite: list[str] | None = None,
        preset: str = "private_chat",
        alias: str | None = None,
        is_direct: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Create a room; ``alias`` is the alias localpart. Returns the room ID."""
        body: dict[str, Any] = {"preset": preset, "is_direct": is_direct, **(extra or {})}
        if name is not None:
            body["name"] = name
        if invite:
            body["invite"] = invite
        if alias is not None:
            body["room_alias_name"] = alias
        return str((await self.request("POST", f"{_C}/createRoom", json_body=body))["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"{_C}/rooms/{_q(room_id)}/invite", json_body={"user_id": user_id})

    async def join(self, room_id_or_alias: str) -> str:
        return str((await self.request("POST", f"{_C}/join/{_q(room_id_or_alias)}", json_body={}))["room_id"])

    async def leave(self, room_id: str) -> None:
        await self.request("POST", f"{_C}/rooms/{_q(room_id)}/leave", json_body={})

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        txn = secrets.token_hex(8)
        path = f"{_C}/rooms/{_q(room_id)}/send/{_q(event_type)}/{txn}"
        return str((await self.request("PUT", path, json_body=content))["event_id"])

    async def send_text(self, room_id: str, body: str, *, msgtype: str = "m.text") -> str:
        return await self.send_event(room_id, "m.room.message", {"msgtype": msgtype, "body": body})

    async def send_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        path = f"{_C}/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}"
        return str((await self.request("PUT", path, json_body=content))["event_id"])

    async def get_event(self, room_id: str, event_id: str) -> Event:
        result: Event = await self.request("GET", f"{_C}/rooms/{_q(room_id)}/event/{_q(event_id)}")
        return result

    async def get_state(
        self, room_id: str, event_type: str | None = None, state_key: str = ""
    ) -> Any:
        """The whole state (a list of events) or one state event's content."""
        if event_type is None:
            return await self.request("GET", f"{_C}/rooms/{_q(room_id)}/state")
        path = f"{_C}/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}"
        return await self.request("GET", path)

    async def joined_members(self, room_id: str) -> set[str]:
        body = await self.request("GET", f"{_C}/rooms/{_q(room_id)}/joined_members")
        return set(body["joined"])

    async def override_ratelimit(self, user_id: str) -> None:
        """Admin only: exempt ``user_id`` from every rate limiter (0/0 means "no limit")."""
        path = f"/_synapse/admin/v1/users/{_q(user_id)}/override_ratelimit"
        await self.request("POST", path, json_body={"messages_per_second": 0, "burst_count": 0})

    async def room_messages(self, room_id: str, *, page: int = 100) -> list[Event]:
        """Every event of the room from its creation on, oldest first (``/messages`` paging)."""
        events: list[Event] = []
        token: str | None = None
        path = f"{_C}/rooms/{_q(room_id)}/messages"
        while True:
            params: dict[str, Any] = {"dir": "f", "limit": page}
            if token is not None:
                params["from"] = token
            body = await self.request("GET", path, params=params)
            events.extend(body.get("chunk", []))
            if not body.get("chunk") or "end" not in body:
                return events
            token = body["end"]

    # ---- sync ---------------------------------------------------------------------------------

    def events(self, room_id: str) -> list[Event]:
        """The room timeline synced so far, oldest first."""
        return list(self._timelines.get(room_id, []))

    async def sync_once(self, timeout_ms: int = 0) -> None:
        """One ``/sync``; appends new timeline events (back-filling limited timelines)."""
        flt = {
            "room": {"timeline": {"limit": self.timeline_limit}},
            "presence": {"types": []},
            "account_data": {"types": []},
        }
        params: dict[str, Any] = {"timeout": timeout_ms, "filter": json.dumps(flt)}
        if self._since is not None:
            params["since"] = self._since
        body = await self.request("GET", f"{_C}/sync", params=params, read_timeout=timeout_ms / 1000 + 30)
        rooms = body.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            await self._absorb_timeline(room_id, room.get("timeline", {}))
            self.ephemeral.setdefault(room_id, []).extend(room.get("ephemeral", {}).get("events", []))
        for room_id, room in rooms.get("leave", {}).items():
            await self._absorb_timeline(room_id, room.get("timeline", {}))
        for room_id, room in rooms.get("invite", {}).items():
            self.invites[room_id] = room.get("invite_state", {}).get("events", [])
        self._since = body["next_batch"]

    async def _absorb_timeline(self, room_id: str, timeline: dict[str, Any]) -> None:
        seen = self._seen.setdefault(room_id, set())
        log = self._timelines.setdefault(room_id, [])
        new: list[Event] = []
        if timeline.get("limited") and timeline.get("prev_batch"):
            self.limited_syncs += 1
            new = await self._backfill(room_id, timeline["prev_batch"], seen)
        new.extend(timeline.get("events", []))
        for ev in new:
            if ev["event_id"] not in seen:
                seen.add(ev["event_id"])
                log.append(ev)

    async def _backfill(self, room_id: str, token: str, seen: set[str]) -> list[Event]:
        """Events before ``token`` back to the newest one already seen, oldest first."""
        found: list[Event] = []
        path = f"{_C}/rooms/{_q(room_id)}/messages"
        while True:
            body = await self.request("GET", path, params={"dir": "b", "from": token, "limit": 100})
            chunk: list[Event] = body.get("chunk", [])
            for ev in chunk:
                if ev["event_id"] in seen:
                    found.reverse()
                    return found
                found.append(ev)
            if not chunk or "end" not in body:
                found.reverse()
                return found
            token = body["end"]

    # A deadline parameter (not asyncio.timeout) so a long-poll /sync is never cut mid-answer.
    async def wait_for_events(
        self, room_id: str, predicate: EventPredicate, count: int, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> list[Event]:
        """Sync until ``count`` events of the room (any seen so far included) match."""
        end = time.monotonic() + timeout
        while True:
            matches = [ev for ev in self._timelines.get(room_id, []) if predicate(ev)]
            if len(matches) >= count:
                return matches[:count]
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.user_id}: {len(matches)}/{count} matching events in {room_id} "
                    f"after {timeout} s"
                )
            await self.sync_once(timeout_ms=int(min(remaining, 5.0) * 1000))

    async def wait_for_ephemeral(
        self, room_id: str, predicate: EventPredicate, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> Event:
        """The first typing or receipt event of the room (synced so far or now) matching ``predicate``."""
        end = time.monotonic() + timeout
        while True:
            for event in self.ephemeral.get(room_id, []):
                if predicate(event):
                    return event
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.user_id}: no matching ephemeral event in {room_id} after {timeout} s")
            await self.sync_once(timeout_ms=int(min(remaining, 5.0) * 1000))

    async def wait_for_event(
        self, room_id: str, predicate: EventPredicate, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> Event:
        """The first event of the room (seen before or synced now) matching ``predicate``."""
        return (await self.wait_for_events(room_id, predicate, 1, timeout=timeout))[0]

    async def wait_for_membership(
        self, room_id: str, user_id: str, membership: str = "join", *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> Event:
        """The room's member event that gives ``user_id`` this ``membership``."""
        return await self.wait_for_event(
            room_id,
            lambda e: e.get("type") == "m.room.member" and e.get("state_key") == user_id
            and e.get("content", {}).get("membership") == membership,
            timeout=timeout,
        )

    async def wait_for_any_invite(self, *, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """Sync until an invite to a room this client has not joined nor had from this method
        before; returns the room."""
        end = time.monotonic() + timeout
        while True:
            known = self._answered_invites | set(self._timelines)
            new = [room for room in self.invites if room not in known]
            if new:
                self._answered_invites.add(new[0])
                return new[0]
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.user_id}: no new invite after {timeout} s")
            await self.sync_once(timeout_ms=int(min(remaining, 5.0) * 1000))

    async def wait_for_invite(
        self, room_id: str, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> list[Event]:
        """Sync until an invite to ``room_id`` arrives; returns its stripped state."""
        end = time.monotonic() + timeout
        while room_id not in self.invites:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.user_id}: no invite to {room_id} after {timeout} s")
            await self.sync_once(timeout_ms=int(min(remaining, 5.0) * 1000))
        return self.invites[room_id]
