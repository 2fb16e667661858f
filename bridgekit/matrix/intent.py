"""One Matrix user's actions (the bridge bot or a ghost), as the appservice masquerading as it.

Every request carries ``?user_id=`` for the intent's user. :meth:`Intent.ensure_registered` and
:meth:`Intent.ensure_joined` are explicit calls, not magic wrapped around other methods, and what
they learn is kept in the injected :class:`~bridgekit.matrix.memory.MatrixStateMemory`, so a
restart does not re-register every ghost or re-join every room.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridgekit import bench_trace
from bridgekit.errors import MatrixError, MatrixForbidden, MatrixUserInUse
from bridgekit.events import JSONDict
from bridgekit.ids import ContentURI, EventID, RoomAlias, RoomID, UserID
from bridgekit.matrix.content import text_content
from bridgekit.matrix.memory import MatrixStateMemory
from bridgekit.matrix.paths import (
    CLIENT_V1,
    CLIENT_V3,
    MEDIA_V3,
    localpart,
    path,
    random_txn_id,
    split_content_uri,
    txn_id_for,
)

if TYPE_CHECKING:
    import httpx

    from bridgekit.matrix.client import MatrixClient, Query


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """Who the homeserver says a request acts as (``GET /account/whoami``)."""

    user_id: UserID
    device_id: str | None
    is_guest: bool


class Intent:
    """Acts as ``user_id``. Get one from :meth:`MatrixClient.intent`."""

    def __init__(self, client: MatrixClient, user_id: UserID, memory: MatrixStateMemory) -> None:
        self._client = client
        self._memory = memory
        self.user_id = user_id

    # -- registration and membership, remembered --------------------------------------------

    @property
    def client(self) -> MatrixClient:
        """The client this intent acts through (the appservice's, or a double-puppet one)."""
        return self._client

    async def ensure_registered(self) -> None:
        """Register the user unless the memory says it exists; an existing user is fine."""
        if await self._memory.is_registered(self.user_id):
            return
        body = {
            "type": "m.login.application_service",
            "username": localpart(self.user_id),
            # The bridge never logs in as its ghosts (it masquerades), and OAuth-only
            # homeservers refuse the registration without this (spec v1.17, CS-7).
            "inhibit_login": True,
        }
        with contextlib.suppress(MatrixUserInUse):
            await self._client.request_json("POST", path(CLIENT_V3, "register"), json=body)
        await self._memory.mark_registered(self.user_id)

    async def ensure_joined(self, room_id: RoomID, *, via: Sequence[str] = ()) -> None:
        """Join ``room_id`` unless the memory says we are in it.

        When the room refuses the join (it is invite-only and the user is not invited), the bot
        invites the user and the join is tried once more.
        """
        if await self._memory.is_joined(room_id, self.user_id):
            return
        await self.ensure_registered()
        try:
            await self.join(room_id, via=via)
        except MatrixForbidden:
            if self.user_id == self._client.bot_user_id:
                raise
            await self._client.bot.invite(room_id, self.user_id)
            await self.join(room_id, via=via)

    async def join(
        self, room: RoomID | RoomAlias, *, via: Sequence[str] = (), reason: str | None = None,
    ) -> RoomID:
        """Join a room by ID or alias; returns the room ID."""
        # ``server_name`` is the name before spec v1.12 renamed it ``via``; send both.
        query = [pair for server in via for pair in (("via", server), ("server_name", server))]
        request_path = path(CLIENT_V3, "join", room)
        body = await self._json("POST", request_path, query, _with_reason({}, reason))
        room_id = RoomID(_string_field(body, "room_id", "join"))
        await self._memory.mark_joined(room_id, self.user_id)
        return room_id

    async def leave(self, room_id: RoomID, *, reason: str | None = None) -> None:
        """Leave ``room_id``."""
        request_path = path(CLIENT_V3, "rooms", room_id, "leave")
        await self._json("POST", request_path, (), _with_reason({}, reason))
        await self._memory.forget_membership(room_id, self.user_id)

    async def invite(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None:
        """Invite ``user_id`` to ``room_id``."""
        body = _with_reason({"user_id": user_id}, reason)
        await self._json("POST", path(CLIENT_V3, "rooms", room_id, "invite"), (), body)

    async def kick(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None:
        """Kick ``user_id`` out of ``room_id``."""
        body = _with_reason({"user_id": user_id}, reason)
        await self._json("POST", path(CLIENT_V3, "rooms", room_id, "kick"), (), body)
        await self._memory.forget_membership(room_id, user_id)

    async def ban(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None:
        """Ban ``user_id`` from ``room_id``."""
        body = _with_reason({"user_id": user_id}, reason)
        await self._json("POST", path(CLIENT_V3, "rooms", room_id, "ban"), (), body)
        await self._memory.forget_membership(room_id, user_id)

    async def unban(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None:
        """Lift ``user_id``'s ban from ``room_id`` (they may join again; they are not invited)."""
        body = _with_reason({"user_id": user_id}, reason)
        await self._json("POST", path(CLIENT_V3, "rooms", room_id, "unban"), (), body)

    async def directory_visibility(self, room_id: RoomID) -> str:
        """``public`` when ``room_id`` is listed in the homeserver's room directory, else ``private``."""
        body = await self._json("GET", path(CLIENT_V3, "directory", "list", "room", room_id))
        return "public" if body.get("visibility") == "public" else "private"

    async def set_directory_visibility(self, room_id: RoomID, visibility: str) -> None:
        """List ``room_id`` in the room directory (``public``) or take it out (``private``)."""
        await self._json("PUT", path(CLIENT_V3, "directory", "list", "room", room_id), (), {"visibility": visibility})

    # -- events --------------------------------------------------------------------------------

    async def send_message(
        self,
        room_id: RoomID,
        content: Mapping[str, object],
        *,
        event_type: str = "m.room.message",
        txn_id: str | None = None,
        ts: int | None = None,
    ) -> EventID:
        """Send a room event; returns its event ID.

        ``txn_id`` is an idempotency key (a remote message ID, say, plus a part number): the
        transaction ID on the wire is derived from it, so sending again with the same key, even
        after a restart, gives back the first event instead of a duplicate. Without one, a random
        transaction ID is chosen once and every retry of this call reuses it. ``ts`` (ms since
        the epoch) sets the event's timestamp (timestamp massaging), for messages said earlier.
        """
        if bench_trace.enabled:
            bench_trace.record("matrix_send", str(content.get("body", "")))
        txn = txn_id_for(txn_id) if txn_id is not None else random_txn_id()
        request_path = path(CLIENT_V3, "rooms", room_id, "send", event_type, txn)
        try:
            body = await self._json("PUT", request_path, _ts_query(ts), dict(content))
        except MatrixForbidden:
            # The memory said joined and the room says not: a join can be lost after it was
            # answered (a join racing a join-rules change is undone by state resolution), or a
            # leave never reached us. Forgotten, so the next attempt joins again instead of
            # failing the same way until it gives up.
            await self._memory.forget_membership(room_id, self.user_id)
            raise
        return EventID(_string_field(body, "event_id", "send"))

    async def send_text(
        self,
        room_id: RoomID,
        body: str,
        *,
        html: str | None = None,
        msgtype: str = "m.text",
        mentions: Iterable[UserID] | None = None,
        mention_room: bool = False,
        reply_to: EventID | None = None,
        extra_content: Mapping[str, object] | None = None,
        txn_id: str | None = None,
        ts: int | None = None,
    ) -> EventID:
        """Send a text message (m.text, m.notice, m.emote); ``m.mentions`` is always set.

        ``extra_content`` adds keys such as ``external_url`` (spec CS-15) to the content.
        """
        content = text_content(
            body, html=html, msgtype=msgtype, mentioned=mentions or (),
            mention_room=mention_room, reply_to=reply_to,
        )
        content.update(extra_content or {})
        return await self.send_message(room_id, content, txn_id=txn_id, ts=ts)

    async def send_state(
        self,
        room_id: RoomID,
        event_type: str,
        state_key: str,
        content: Mapping[str, object],
        *,
        ts: int | None = None,
    ) -> EventID:
        """Set a state event; returns its event ID. ``ts`` as in :meth:`send_message`."""
        request_path = path(CLIENT_V3, "rooms", room_id, "state", event_type, state_key)
        body = await self._json("PUT", request_path, _ts_query(ts), dict(content))
        return EventID(_string_field(body, "event_id", "state"))

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = "") -> JSONDict:
        """The content of a state event; MatrixNotFound when the room has none."""
        request_path = path(CLIENT_V3, "rooms", room_id, "state", event_type, state_key)
        return await self._json("GET", request_path)

    async def get_state_event(self, room_id: RoomID, event_type: str, state_key: str = "") -> JSONDict:
        """The whole state event (``sender`` included), asked for with ``format=event`` (Synapse
        has long supported it); a homeserver that ignores it answers the content alone."""
        request_path = path(CLIENT_V3, "rooms", room_id, "state", event_type, state_key)
        return await self._json("GET", request_path, [("format", "event")])

    async def get_event(self, room_id: RoomID, event_id: EventID) -> JSONDict:
        """One event of a room, as this user may see it; MatrixNotFound when it cannot."""
        return await self._json("GET", path(CLIENT_V3, "rooms", room_id, "event", event_id))

    async def redact(
        self, room_id: RoomID, event_id: EventID, *, reason: str | None = None,
        txn_id: str | None = None,
    ) -> EventID:
        """Redact an event; returns the redaction's ID. ``txn_id`` as in :meth:`send_message`."""
        txn = txn_id_for(txn_id) if txn_id is not None else random_txn_id()
        request_path = path(CLIENT_V3, "rooms", room_id, "redact", event_id, txn)
        body = await self._json("PUT", request_path, (), _with_reason({}, reason))
        return EventID(_string_field(body, "event_id", "redact"))

    async def set_typing(self, room_id: RoomID, typing: bool, *, timeout_ms: int = 30_000) -> None:
        """Show (or stop showing) this user typing in the room."""
        body: JSONDict = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        await self._json("PUT", path(CLIENT_V3, "rooms", room_id, "typing", self.user_id), (), body)

    async def set_presence(self, presence: str, *, status_msg: str | None = None) -> None:
        """Show this user ``online``, ``unavailable`` or ``offline`` (a homeserver with presence
        off takes it and shows nothing)."""
        body: JSONDict = {"presence": presence}
        if status_msg is not None:
            body["status_msg"] = status_msg
        await self._json("PUT", path(CLIENT_V3, "presence", self.user_id, "status"), (), body)

    async def mark_read(self, room_id: RoomID, event_id: EventID) -> None:
        """Move this user's read receipt (and private read marker) to ``event_id``."""
        await self._json("POST", path(CLIENT_V3, "rooms", room_id, "read_markers"), (),
                         {"m.read": event_id, "m.fully_read": event_id})

    async def create_room(
        self,
        *,
        alias_localpart: str | None = None,
        name: str | None = None,
        topic: str | None = None,
        invitees: Iterable[UserID] = (),
        initial_state: Iterable[Mapping[str, object]] = (),
        preset: str | None = None,
        is_direct: bool = False,
        visibility: str | None = None,
        power_level_content_override: Mapping[str, object] | None = None,
        creation_content: Mapping[str, object] | None = None,
        room_version: str | None = None,
    ) -> RoomID:
        """Create a room with this user as creator (and joined); returns its ID.

        ``initial_state`` entries are ``{"type", "state_key", "content"}`` objects; ``preset`` is
        ``private_chat``, ``trusted_private_chat`` or ``public_chat``.
        """
        optional: dict[str, object | None] = {
            "room_alias_name": alias_localpart, "name": name, "topic": topic, "preset": preset,
            "visibility": visibility, "room_version": room_version,
            "power_level_content_override": power_level_content_override,
            "creation_content": creation_content,
        }
        body: JSONDict = {key: value for key, value in optional.items() if value is not None}
        body["invite"] = list(invitees)
        body["initial_state"] = [dict(event) for event in initial_state]
        body["is_direct"] = is_direct
        answer = await self._json("POST", path(CLIENT_V3, "createRoom"), (), body)
        room_id = RoomID(_string_field(answer, "room_id", "createRoom"))
        await self._memory.mark_joined(room_id, self.user_id)
        return room_id

    # -- profile -------------------------------------------------------------------------------

    async def set_displayname(self, displayname: str) -> None:
        """Set this user's global display name."""
        request_path = path(CLIENT_V3, "profile", self.user_id, "displayname")
        await self._json("PUT", request_path, (), {"displayname": displayname})

    async def set_avatar_url(self, avatar_url: ContentURI) -> None:
        """Set this user's global avatar (an ``mxc://`` URI from :meth:`upload_media`)."""
        request_path = path(CLIENT_V3, "profile", self.user_id, "avatar_url")
        await self._json("PUT", request_path, (), {"avatar_url": avatar_url})

    async def get_profile(self, user_id: UserID | None = None) -> JSONDict:
        """The profile (``displayname``, ``avatar_url``) of ``user_id``, by default our own."""
        return await self._json("GET", path(CLIENT_V3, "profile", user_id or self.user_id))

    async def whoami(self) -> WhoAmI:
        """Who the homeserver takes this intent's requests to come from."""
        body = await self._json("GET", path(CLIENT_V3, "account", "whoami"))
        device_id = body.get("device_id")
        return WhoAmI(
            user_id=UserID(_string_field(body, "user_id", "whoami")),
            device_id=device_id if isinstance(device_id, str) else None,
            is_guest=body.get("is_guest") is True,
        )

    # -- media ---------------------------------------------------------------------------------

    async def upload_media(
        self, data: bytes, content_type: str, filename: str | None = None,
    ) -> ContentURI:
        """Upload bytes to the homeserver's media repository; returns their ``mxc://`` URI."""
        query = [("filename", filename)] if filename else []
        response = await self._client.request(
            "POST", path(MEDIA_V3, "upload"), user_id=self.user_id, query=query,
            content=data, headers={"Content-Type": content_type},
        )
        body = response.json()
        uri = body.get("content_uri") if isinstance(body, dict) else None
        if not isinstance(uri, str):
            raise MatrixError("POST upload: answer has no 'content_uri'")
        return ContentURI(uri)

    async def download_media(self, uri: ContentURI) -> tuple[bytes, str]:
        """Download media through the authenticated endpoint (spec v1.11); (bytes, content type).

        ValueError when ``uri`` is not an ``mxc://`` URI. The homeserver may redirect (307/308)
        to where the file is; httpx drops our token if that is another host.
        """
        server, media_id = split_content_uri(uri)
        response = await self._client.request(
            "GET", path(CLIENT_V1, "media", "download", server, media_id),
            user_id=self.user_id, follow_redirects=True,
        )
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        return response.content, content_type

    def open_media(self, uri: ContentURI) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        """The authenticated download of ``uri`` (spec v1.11), its body not read yet; the answer
        may be a redirect (3xx), which is not followed: see ``bridgekit/media.py``.

        ValueError when ``uri`` is not an ``mxc://`` URI."""
        server, media_id = split_content_uri(uri)
        return self._client.stream(
            "GET", path(CLIENT_V1, "media", "download", server, media_id), user_id=self.user_id,
        )

    async def _json(
        self, method: str, request_path: str, query: Query = (), body: object = None,
    ) -> JSONDict:
        return await self._client.request_json(
            method, request_path, user_id=self.user_id, query=query, json=body,
        )


def _with_reason(body: JSONDict, reason: str | None) -> JSONDict:
    return {**body, "reason": reason} if reason is not None else body


def _ts_query(ts: int | None) -> list[tuple[str, str]]:
    return [("ts", str(ts))] if ts is not None else []


def _string_field(body: Mapping[str, object], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise MatrixError(f"{what}: the homeserver's answer has no '{key}'")
    return value


__all__ = ["Intent", "WhoAmI"]
