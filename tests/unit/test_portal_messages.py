"""Which ability receives a connector's portal messages is declared, never switched silently.

A connector with sessions and ``handle_matrix_event`` must say which gets them (``portal_messages``)
or the bridge refuses to start; and the core's routing honours the declaration: with ``"events"``
a portal message reaches ``handle_matrix_event`` although the connector has a relay session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from bridgekit import ConfigError, EventID, MatrixEvent, OutgoingMessage, RoomID, SessionKind, UserID
from bridgekit.core.bridge import Bridge, OwnUsers
from bridgekit.core.connectors import PlannedConnector, build_connector, portal_message_receiver
from bridgekit.core.dispatcher import WorkItem
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.matrix_to_remote import MatrixToRemote
from bridgekit.core.permissions import Permissions
from bridgekit.core.sessions import Sessions
from bridgekit.matrix import MatrixClient
from bridgekit.store import Database, MatrixStateStore
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.sessions import LoginStore
from tests.support.contexts import hand_built_context

ROOM = RoomID("!portal:example.org")


class RelaySession:
    kind = SessionKind.BOT

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutgoingMessage) -> str:
        self.sent.append(message.text)
        return f"remote-{len(self.sent)}"


class Connector:
    """Built with its context; offers what the test class sets."""

    def __init__(self, ctx: Any) -> None:
        self.name = ctx.name
        self.heard: list[str] = []
        self.relay = RelaySession()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SessionsOnly(Connector):
    async def relay_session(self) -> RelaySession:
        return self.relay


class EventsOnly(Connector):
    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        self.heard.append(str(event.content.get("body")))


class Both(SessionsOnly, EventsOnly):
    pass


class BothToEvents(Both):
    portal_messages: ClassVar[str] = "events"


class BothToSessions(Both):
    portal_messages: ClassVar[str] = "sessions"


def build(factory: type[Connector], name: str = "net") -> Connector:
    connector = build_connector(PlannedConnector(name, factory, {}), hand_built_context(name, {}))
    assert isinstance(connector, Connector)
    return connector


def test_an_undeclared_choice_between_sessions_and_events_stops_the_bridge_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as refused:
        build(Both, "mynet")
    message = str(refused.value)
    assert "connectors.mynet (Both)" in message
    assert 'portal_messages = "sessions"' in message
    assert '"events"' in message


def test_what_a_connector_offers_decides_when_it_offers_one_of_the_two() -> None:
    assert portal_message_receiver(build(SessionsOnly)) == "sessions"
    assert portal_message_receiver(build(EventsOnly)) == "events"
    assert portal_message_receiver(build(Connector)) is None
    assert portal_message_receiver(build(BothToEvents)) == "events"
    assert portal_message_receiver(build(BothToSessions)) == "sessions"


def test_a_declaration_of_an_ability_the_connector_lacks_or_of_nothing_known_is_refused() -> None:
    class SessionsDeclaringEvents(SessionsOnly):
        portal_messages = "events"

    class Misspelt(Both):
        portal_messages = "session"

    with pytest.raises(ConfigError, match="has no handle_matrix_event"):
        build(SessionsDeclaringEvents)
    with pytest.raises(ConfigError, match='must be "sessions" or "events"'):
        build(Misspelt)


def test_a_connector_must_carry_the_name_of_its_section() -> None:
    class Stubborn(EventsOnly):
        def __init__(self, ctx: Any) -> None:
            super().__init__(ctx)
            self.name = "stubborn"

    with pytest.raises(ConfigError, match=r"self\.name = ctx\.name"):
        build(Stubborn, "libera")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    try:
        yield database
    finally:
        await database.close()


class _Bot:
    async def get_state(self, room_id: str, event_type: str, state_key: str) -> dict[str, Any]:
        return {"displayname": "Alice"}


class _Matrix:
    bot = _Bot()


async def _handle_portal_message(db: Database, connector: Connector) -> None:
    stores = BridgeStores(db)
    await stores.portals.link_portal("net", "chat", ROOM)

    async def notify(user: UserID, text: str) -> None: ...

    async def register(user: UserID) -> None: ...

    connectors = {"net": connector}
    sessions = Sessions(connectors, LoginStore(db), None, notify)
    router = MatrixToRemote(
        connectors, stores, cast(MatrixClient, _Matrix()), Permissions.from_mapping({"*": "relay"}), sessions,
        SendsInFlight(),
    )
    bridge = Bridge([connector], OwnUsers("@bot:example.org", ["_"], "example.org"), register,
                    MatrixStateStore(db), router=router)
    bridge.connectors_started()
    event = MatrixEvent(
        event_id=EventID("$hello"), room_id=ROOM, sender=UserID("@alice:example.org"), type="m.room.message",
        origin_server_ts=0, content={"msgtype": "m.text", "body": "hello"},
    )
    await bridge.handle(WorkItem(1, "pdu", ROOM, event))
    await stores.flush()  # the write-behind, as at shutdown: nothing left running on the database


async def test_declared_events_bring_portal_messages_to_handle_matrix_event_although_sessions_exist(
    db: Database,
) -> None:
    connector = build(BothToEvents)
    await _handle_portal_message(db, connector)
    assert connector.heard == ["hello"]
    assert connector.relay.sent == []


async def test_declared_sessions_send_portal_messages_through_the_relay_and_not_to_events(db: Database) -> None:
    connector = build(BothToSessions)
    await _handle_portal_message(db, connector)
    assert connector.relay.sent == ["<Alice> hello"]
    assert connector.heard == []
