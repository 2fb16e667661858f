"""The core's sessions (core/sessions.py): logins encrypted and restored, virtual identities closed
when idle, and state reports to the owner (a transient disconnect only if it lasts). The
connector here is a small fake; the stores are real (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from bridgekit import (
    LoginFailed,
    LoginField,
    LoginFlow,
    MessageID,
    OutgoingMessage,
    PuppetLogin,
    RemoteUserID,
    SessionKind,
    SessionState,
    UserID,
)
from bridgekit.core.sessions import Sessions
from bridgekit.credentials import CredentialCipher, generate_key
from bridgekit.store import Database
from bridgekit.store.sessions import LoginStore
from bridgekit.testing.waiting import until

ALICE = UserID("@alice:example.org")


class FakeSession:
    def __init__(self, kind: SessionKind, nick: str) -> None:
        self.kind = kind
        self.nick = nick
        self.closed = False

    async def send(self, message: OutgoingMessage) -> MessageID | None:
        return None

    async def close(self) -> None:
        self.closed = True


class FakeNet:
    name = "fakenet"
    virtual_users = True
    login_flows = (LoginFlow("password", "password", (LoginField("password", "Password?", secret=True),)),)

    def __init__(self) -> None:
        self.password = "s3cret"
        self.connected: list[PuppetLogin] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def virtual_session(self, user_id: UserID, display_name: str) -> FakeSession:
        await asyncio.sleep(0)  # a real connector connects here: let a second caller in
        return FakeSession(SessionKind.VIRTUAL, display_name)

    async def login(self, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> PuppetLogin:
        if answers["password"] != self.password:
            raise LoginFailed("wrong password")
        return PuppetLogin(RemoteUserID("alice_remote"), "Alice R", {"password": answers["password"]})

    async def connect_puppet(self, user_id: UserID, login: PuppetLogin) -> FakeSession:
        if login.credentials.get("password") != self.password:
            raise LoginFailed("password changed")
        self.connected.append(login)
        return FakeSession(SessionKind.PUPPET, login.remote_user_id)

    async def logout(self, user_id: UserID, login: PuppetLogin) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
    try:
        yield database
    finally:
        await database.close()


def make(db: Database, net: FakeNet, told: list[tuple[UserID, str]], key: str, clock: Clock | None = None,
         debounce: float = 0.05) -> Sessions:
    async def notify(user: UserID, text: str) -> None:
        told.append((user, text))

    return Sessions({"fakenet": net}, LoginStore(db), CredentialCipher(key), notify,
                    virtual_idle_seconds={"fakenet": 60}, debounce_seconds=debounce, clock=clock or Clock())


async def test_login_stores_credentials_encrypted_and_a_restart_restores_the_puppet(db: Database) -> None:
    net, told, key = FakeNet(), list[tuple[UserID, str]](), generate_key()
    sessions = make(db, net, told, key)
    assert "failed: wrong password" in await sessions.login("fakenet", ALICE, "password", {"password": "nope"})
    assert await sessions.login("fakenet", ALICE, "password", {"password": "s3cret"}) == (
        "Logged in to fakenet as Alice R. Your messages in fakenet portals now go out as you."
    )
    assert sessions.puppet("fakenet", ALICE) is not None
    assert sessions.owner_of("fakenet", "alice_remote") == ALICE
    stored = await LoginStore(db).logins(ALICE)
    assert stored[0].credentials is not None
    assert "s3cret" not in stored[0].credentials
    await sessions.stop()

    restarted = make(db, FakeNet(), told, key)
    assert await restarted.restore() == 1
    await until(lambda: restarted.puppet("fakenet", ALICE) is not None)
    assert restarted.owner_of("fakenet", "alice_remote") == ALICE
    await restarted.stop()


async def test_changed_credentials_at_restore_are_reported_and_logout_forgets(db: Database) -> None:
    net, told, key = FakeNet(), list[tuple[UserID, str]](), generate_key()
    sessions = make(db, net, told, key)
    await sessions.login("fakenet", ALICE, "password", {"password": "s3cret"})
    await sessions.stop()
    changed = FakeNet()
    changed.password = "rotated"
    restarted = make(db, changed, told, key)
    await restarted.restore()
    await until(lambda: restarted.state("fakenet", ALICE) is SessionState.BAD_CREDENTIALS)
    assert restarted.puppet("fakenet", ALICE) is None
    assert (await restarted.describe_logins(ALICE)) == ["fakenet: Alice R - bad-credentials (password changed)"]
    assert "Logged out of fakenet" in await restarted.logout("fakenet", ALICE)
    assert await restarted.describe_logins(ALICE) == []
    assert restarted.owner_of("fakenet", "alice_remote") is None
    await restarted.stop()


async def test_virtual_sessions_are_made_once_and_closed_when_idle(db: Database) -> None:
    clock = Clock()
    sessions = make(db, FakeNet(), [], generate_key(), clock)
    first, second = await asyncio.gather(
        sessions.virtual("fakenet", ALICE, "alice"), sessions.virtual("fakenet", ALICE, "alice")
    )
    assert first is second  # two quick messages, one identity
    clock.now += 59
    assert await sessions.close_idle() == 0
    clock.now += 2
    assert await sessions.close_idle() == 1
    assert isinstance(first, FakeSession)
    assert first.closed
    assert await sessions.virtual("fakenet", ALICE, "alice") is not first
    await sessions.stop()


async def test_a_session_held_by_portals_is_not_closed_as_idle_until_the_last_is_left(db: Database) -> None:
    clock = Clock()
    sessions = make(db, FakeNet(), [], generate_key(), clock)
    held = await sessions.virtual("fakenet", ALICE, "alice")
    sessions.hold("fakenet", ALICE, "!a:x")
    sessions.hold("fakenet", ALICE, "!b:x")
    clock.now += 3600
    assert await sessions.close_idle() == 0
    sessions.release("fakenet", ALICE, "!a:x")
    assert await sessions.close_idle() == 0
    sessions.release("fakenet", ALICE, "!b:x")
    assert await sessions.close_idle() == 1
    assert isinstance(held, FakeSession)
    assert held.closed
    await sessions.stop()


async def test_a_short_disconnect_is_not_told_a_lasting_one_is_and_so_is_the_recovery(db: Database) -> None:
    told: list[tuple[UserID, str]] = []
    sessions = make(db, FakeNet(), told, generate_key(), debounce=0.2)
    await sessions.report("fakenet", ALICE, SessionState.CONNECTED, None)
    await sessions.report("fakenet", ALICE, SessionState.TRANSIENT_DISCONNECT, "ping timeout")
    await sessions.report("fakenet", ALICE, SessionState.CONNECTED, None)
    # Nothing to wait on for "no notice": let the debounce window pass, then check.
    await asyncio.sleep(0.3)
    assert told == []

    await sessions.report("fakenet", ALICE, SessionState.TRANSIENT_DISCONNECT, "ping timeout")
    await until(lambda: bool(told))
    assert told == [(ALICE, "Your fakenet session lost its connection and is reconnecting: ping timeout.")]
    await sessions.report("fakenet", ALICE, SessionState.CONNECTED, None)
    assert told[-1] == (ALICE, "Your fakenet connection is back.")
    await sessions.report("fakenet", ALICE, SessionState.BAD_CREDENTIALS, "password changed")
    assert "log in again" in told[-1][1]
    await sessions.stop()
