"""An in-process appservice on a real database, for the API conformance and inbox tests.

The HTTP layer runs through httpx's ASGI transport (no socket), everything below it is real: the
inbox stores into SQLite or PostgreSQL, the dispatcher runs the connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridgekit.appservice.app import ALL_RESOURCES, create_app
from bridgekit.appservice.state import AppserviceState
from bridgekit.core.bridge import Bridge, OwnUsers
from bridgekit.core.inbox import Inbox
from bridgekit.events import MatrixEvent
from bridgekit.ids import RoomAlias, UserID
from bridgekit.store import Database, MatrixStateStore
from bridgekit.store.inbox import InboxStore

HS_TOKEN = "hs_token_for_tests_0123456789"
SERVER = "localhost"
KNOWN_USER = f"@_bk_known:{SERVER}"
KNOWN_ALIAS = f"#_bk_known:{SERVER}"


@dataclass
class RecordingConnector:
    """Claims one user, one alias and one protocol; records every event it is handed."""

    name: str = "example"
    protocol_ids: tuple[str, ...] = ("testnet",)
    events: list[MatrixEvent] = field(default_factory=list)
    fail_times: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        remaining = self.fail_times.get(event.event_id, 0)
        if remaining:
            self.fail_times[event.event_id] = remaining - 1
            raise RuntimeError(f"deliberate failure for {event.event_id}")
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, count: int, within: float = 10.0) -> list[MatrixEvent]:
        async def reached() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), within)
        return self.events

    async def query_user(self, user_id: UserID) -> bool:
        return user_id == KNOWN_USER

    async def query_alias(self, alias: RoomAlias) -> bool:
        return alias == KNOWN_ALIAS

    async def thirdparty_protocol(self, protocol: str) -> dict[str, Any] | None:
        return {
            "user_fields": ["nick"],
            "location_fields": ["channel"],
            "icon": "mxc://localhost/icon",
            "field_types": {
                "nick": {"regexp": "[^\\s]+", "placeholder": "alice"},
                "channel": {"regexp": "#[^\\s]+", "placeholder": "#chat"},
            },
            "instances": [{"desc": "Test net", "fields": {}, "network_id": "testnet"}],
        }

    async def thirdparty_locations(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        if fields.get("channel") != "#chat":
            return []
        return [{"alias": KNOWN_ALIAS, "protocol": protocol, "fields": dict(fields)}]

    async def thirdparty_users(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        if fields.get("nick") != "known":
            return []
        return [{"userid": KNOWN_USER, "protocol": protocol, "fields": dict(fields)}]

    async def thirdparty_location_by_alias(self, alias: RoomAlias) -> list[dict[str, Any]]:
        if alias != KNOWN_ALIAS:
            return []
        return [{"alias": alias, "protocol": "testnet", "fields": {"channel": "#chat"}}]

    async def thirdparty_user_by_id(self, user_id: UserID) -> list[dict[str, Any]]:
        if user_id != KNOWN_USER:
            return []
        return [{"userid": user_id, "protocol": "testnet", "fields": {"nick": "known"}}]


@dataclass
class RunningAppservice:
    http: httpx.AsyncClient
    connector: RecordingConnector
    inbox: Inbox
    state: AppserviceState
    registered: list[str]


@asynccontextmanager
async def running_appservice(
    database: Database,
    *,
    connector: RecordingConnector | None = None,
    max_attempts: int = 3,
    max_queued: int = 10_000,
) -> AsyncIterator[RunningAppservice]:
    connector = connector or RecordingConnector()
    registered: list[str] = []

    async def register(user_id: UserID) -> None:
        registered.append(user_id)

    bridge = Bridge(
        [connector], OwnUsers(f"@_bk_bot:{SERVER}", ["_bk_"], SERVER), register, MatrixStateStore(database)
    )
    bridge.connectors_started()
    inbox = Inbox(InboxStore(database), bridge.handle, max_attempts=max_attempts, max_queued=max_queued)
    await inbox.start()
    state = AppserviceState(
        hs_token=HS_TOKEN.encode(), max_body_bytes=64 * 1024 * 1024, inbox=inbox, bridge=bridge,
        database_dialect=database.dialect,
    )
    state.health.ready = True
    app = create_app(state, resources=ALL_RESOURCES)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://appservice") as http:
        try:
            yield RunningAppservice(http, connector, inbox, state, registered)
        finally:
            await inbox.stop(grace_seconds=5)


def auth(token: str = HS_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(event_id: str, room: str = "!room:localhost", body: str = "hi", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "room_id": room,
        "sender": "@alice:localhost",
        "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": body},
    }
    event.update(extra)
    return event
