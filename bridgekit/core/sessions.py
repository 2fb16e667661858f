"""The remote identities the core holds for Matrix users: puppet logins and virtual sessions.

Puppets: ``login`` asks the connector to check the user's answers (:class:`LoginProvider`), stores
what it returns with the credentials encrypted (``credentials.py``), then connects the session.
At start-up every stored login is connected again, in the background, so a network that is slow
to answer does not hold up the bridge. ``logout`` closes the session and forgets the login.

Virtual sessions are made on first use and closed by the core when idle for the connector's
``virtual_idle_minutes``; the next message makes a new one. A connector may answer ``UseRelay``
instead (a connection limit): the user is told once per network, and relayed (``matrix_to_remote``).

Status: connectors report state changes (:meth:`BridgeContext.report_session`); the owner is
told in their management room. A transient disconnect is only told if it lasts
``debounce_seconds`` (networks drop and come back all the time; a notice each time is noise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field

from bridgekit.connector import (
    ClosableSession,
    LoginFailed,
    LoginProvider,
    NetworkConnector,
    PuppetLogin,
    RemoteSession,
    SessionState,
    UseRelay,
    VirtualUserProvider,
)
from bridgekit.credentials import CredentialCipher
from bridgekit.ids import RemoteUserID, UserID
from bridgekit.store.sessions import LoginStore, StoredLogin, login_id

log = logging.getLogger(__name__)

OwnerNotifier = Callable[[UserID, str], Awaitable[None]]
"""(Matrix user, text) -> a notice in the user's management room (if they have one)."""

_PROBLEMS = {
    SessionState.TRANSIENT_DISCONNECT: "lost its connection and is reconnecting",
    SessionState.BAD_CREDENTIALS: "was refused by the network: log in again ('login')",
    SessionState.LOGGED_OUT: "was logged out by the network: log in again ('login')",
    SessionState.UNKNOWN_ERROR: "stopped with an error",
}


@dataclass
class _Virtual:
    session: RemoteSession
    last_used: float


@dataclass
class _Status:
    state: SessionState = SessionState.CONNECTING
    detail: str | None = None
    told_problem: bool = False
    pending: asyncio.Task[object] | None = field(default=None, repr=False)


class Sessions:
    """Puppet and virtual sessions of every connector, by (network, Matrix user)."""

    def __init__(
        self,
        connectors: Mapping[str, NetworkConnector],
        logins: LoginStore,
        cipher: CredentialCipher | None,
        notify_owner: OwnerNotifier,
        *,
        virtual_idle_seconds: Mapping[str, float] | None = None,
        debounce_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connectors = connectors  # filled when the connectors are built, after the core
        self._logins = logins
        self._cipher = cipher
        self._notify_owner = notify_owner
        self._idle = dict(virtual_idle_seconds or {})
        self._debounce = debounce_seconds
        self._clock = clock
        self._puppets: dict[tuple[str, UserID], RemoteSession] = {}
        self._puppet_logins: dict[tuple[str, UserID], PuppetLogin] = {}
        self._owners: dict[tuple[str, str], UserID] = {}
        """(network, remote user ID) -> the Matrix user logged in as them: their messages from
        other clients are theirs (double puppet), not a ghost's."""
        self._virtual: dict[tuple[str, UserID], _Virtual] = {}
        self._held: dict[tuple[str, UserID], set[str]] = {}
        """(network, user) -> the portal rooms they joined with ``join_on_portal_join``: their
        virtual session is not closed as idle while the set is not empty."""
        self._creating: dict[tuple[str, UserID], asyncio.Lock] = {}
        self._relayed: set[tuple[str, UserID]] = set()
        """(network, user) told that the connector relays them for now (``UseRelay``)."""
        self._status: dict[tuple[str, UserID | None], _Status] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    # ---- lookups (the routing rule, double puppets) ----------------------------------------

    def puppet(self, network: str, user_id: UserID) -> RemoteSession | None:
        """``user_id``'s puppet on ``network`` while it is connected."""
        session = self._puppets.get((network, user_id))
        if session is None or self.state(network, user_id) is not SessionState.CONNECTED:
            return None
        return session

    def owner_of(self, network: str, remote_user_id: str) -> UserID | None:
        """The Matrix user logged in as ``remote_user_id``, if any."""
        return self._owners.get((network, remote_user_id))

    def has_login(self, user_id: UserID) -> bool:
        """Whether ``user_id`` is logged in to any network (the bridge may act as them then)."""
        return any(owner == user_id for _network, owner in self._puppet_logins)

    def state(self, network: str, owner: UserID | None) -> SessionState | None:
        status = self._status.get((network, owner))
        return status.state if status is not None else None

    def detail(self, network: str, owner: UserID | None) -> str | None:
        """What the connector said with the session's last state (why it is reconnecting)."""
        status = self._status.get((network, owner))
        return status.detail if status is not None else None

    def count_by_state(self) -> dict[tuple[str, SessionState], int]:
        """How many sessions each network has in each state (bot, puppets, virtual identities
        that report theirs), for the metrics; every state of every connector, zeros included."""
        counts = {(network, state): 0 for network in self._connectors for state in SessionState}
        for (network, _owner), status in self._status.items():
            counts[(network, status.state)] = counts.get((network, status.state), 0) + 1
        return counts

    def connector_offers_logins(self, network: str) -> bool:
        return isinstance(self._connectors.get(network), LoginProvider)

    # ---- virtual sessions ------------------------------------------------------------------

    async def virtual(self, network: str, user_id: UserID, display_name: str) -> RemoteSession:
        """``user_id``'s virtual session on ``network``, made on first use."""
        key = (network, user_id)
        held = self._virtual.get(key)
        if held is None:
            # One creation at a time per user: two quick messages must not open two identities.
            async with self._creating.setdefault(key, asyncio.Lock()):
                held = self._virtual.get(key)
                if held is None:
                    connector = self._connectors[network]
                    assert isinstance(connector, VirtualUserProvider)
                    try:
                        session = await connector.virtual_session(user_id, display_name)
                    except UseRelay as use_relay:
                        await self._tell_relayed(network, user_id, use_relay.reason)
                        raise
                    self._relayed.discard(key)  # told again if it happens again
                    held = self._virtual[key] = _Virtual(session, self._clock())
        held.last_used = self._clock()
        return held.session

    async def opens_virtual(self, network: str, user_id: UserID, display_name: str) -> bool:
        """Open ``user_id``'s virtual session (if none is open); False when the connector said
        :class:`~bridgekit.connector.UseRelay`: they are relayed (or refused) instead."""
        try:
            await self.virtual(network, user_id, display_name)
        except UseRelay:
            return False
        return True

    async def _tell_relayed(self, network: str, user_id: UserID, reason: str) -> None:
        """Once per network until they have a session of their own again, not per message."""
        if (network, user_id) not in self._relayed:
            self._relayed.add((network, user_id))
            await self._tell(user_id, f"{reason} Your messages in {network} portals go out through the bridge's "
                             "relay for now, as <your name> text, where the room's relay is on.")

    def existing_virtual(self, network: str, user_id: UserID) -> RemoteSession | None:
        """``user_id``'s virtual session if one is open (typing and receipts never open one)."""
        held = self._virtual.get((network, user_id))
        return held.session if held is not None else None

    def virtual_count(self, network: str | None = None) -> int:
        return sum(1 for (net, _user) in self._virtual if network is None or net == network)

    def hold(self, network: str, user_id: UserID, room_id: str) -> None:
        """``user_id`` is in a portal of ``network`` whose chat their session joined: keep it open."""
        self._held.setdefault((network, user_id), set()).add(room_id)

    def release(self, network: str, user_id: UserID, room_id: str) -> None:
        """``user_id`` left that portal: the idle timeout applies again once they are in none."""
        rooms = self._held.get((network, user_id))
        if rooms is not None:
            rooms.discard(room_id)
            if not rooms:
                del self._held[(network, user_id)]

    async def close_idle(self) -> int:
        """Close virtual sessions idle longer than their connector allows (except those held by
        :meth:`hold`); returns how many."""
        now = self._clock()
        idle = [
            key for key, held in self._virtual.items()
            if key[0] in self._idle and now - held.last_used >= self._idle[key[0]] and key not in self._held
        ]
        for key in idle:
            held = self._virtual.pop(key)
            log.info("closing the idle %s session of %s", key[0], key[1])
            await _close(held.session)
        return len(idle)

    async def run_idle_closer(self, interval: float | None = None) -> None:
        """Background task: :meth:`close_idle` every ``interval`` seconds (default: half the
        shortest idle time, between 1 and 30 seconds)."""
        if interval is None:
            interval = min(30.0, max(1.0, min(self._idle.values(), default=60.0) / 2))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.close_idle()
            except Exception:
                log.exception("closing idle virtual sessions failed")

    # ---- puppets ---------------------------------------------------------------------------

    async def restore(self, *, wait_seconds: float = 0.0) -> int:
        """Connect every stored login again; returns how many. Waits up to ``wait_seconds`` for the
        connections (so the first messages after a restart go out as their senders, not refused),
        and leaves slower ones to finish in the background."""
        stored = await self._logins.logins()
        connecting: list[asyncio.Task[object]] = []
        for login in stored:
            if login.network not in self._connectors or not self.connector_offers_logins(login.network):
                log.warning("%s is logged in to %s, which is not running; keeping the login", login.owner,
                            login.network)
                continue
            puppet_login = self._open(login)
            if puppet_login is None:
                continue
            owner = UserID(login.owner)
            self._remember(login.network, owner, puppet_login)
            connecting.append(self._spawn(self._connect(login.network, owner, puppet_login, announce=False)))
        if connecting and wait_seconds > 0:
            await asyncio.wait(connecting, timeout=wait_seconds)
        return len(stored)

    async def login(self, network: str, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> str:
        """Run a login flow; returns what to tell the user."""
        connector = self._connectors.get(network)
        # (the None test first: mypy cannot narrow an Optional protocol straight to another one)
        if connector is None or not isinstance(connector, LoginProvider):
            return f"{network} does not offer logins."
        if self._cipher is None:
            return ("Logins are turned off: the bridge has no credentials key. The bridge's admin can make one "
                    "with 'bridgekit generate-key' and set BRIDGEKIT_CREDENTIALS_KEY.")
        try:
            puppet_login = await connector.login(user_id, flow_id, answers)
        except LoginFailed as error:
            return f"Login to {network} failed: {error}"
        previous = self._puppets.pop((network, user_id), None)
        if previous is not None:
            await _close(previous)
        sealed = self._cipher.encrypt(puppet_login.credentials, context=login_id(network, user_id))
        await self._logins.save(
            network, user_id, puppet_login.remote_user_id, puppet_login.remote_name, sealed,
            SessionState.CONNECTING.value,
        )
        self._remember(network, user_id, puppet_login)
        problem = await self._connect(network, user_id, puppet_login, announce=False)
        if problem is not None:
            return f"Logged in to {network} as {puppet_login.remote_name}, but connecting failed: {problem}"
        return (f"Logged in to {network} as {puppet_login.remote_name}. Your messages in {network} portals now go "
                "out as you.")

    async def logout(self, network: str, user_id: UserID) -> str:
        login = self._puppet_logins.pop((network, user_id), None)
        session = self._puppets.pop((network, user_id), None)
        if session is not None:
            await _close(session)
        connector = self._connectors.get(network)
        if login is not None:
            self._owners.pop((network, login.remote_user_id), None)
            if connector is not None and isinstance(connector, LoginProvider):
                try:
                    await connector.logout(user_id, login)
                except Exception:
                    log.exception("%s: logout of %s failed on the network's side", network, user_id)
        self._status.pop((network, user_id), None)
        removed = await self._logins.remove(network, user_id)
        if not removed and login is None:
            return f"You are not logged in to {network}."
        return f"Logged out of {network}; your stored credentials are deleted."

    async def reconnect(self, network: str, user_id: UserID) -> str:
        login = self._puppet_logins.get((network, user_id))
        if login is None:
            return f"You are not logged in to {network}: send 'login {network}'."
        session = self._puppets.pop((network, user_id), None)
        if session is not None:
            await _close(session)
        problem = await self._connect(network, user_id, login, announce=False)
        return f"Reconnected to {network}." if problem is None else f"Reconnecting to {network} failed: {problem}"

    async def describe_logins(self, user_id: UserID) -> list[str]:
        lines = []
        for stored in await self._logins.logins(user_id):
            state = self.state(stored.network, user_id)
            shown = state.value if state is not None else stored.state.lower()
            detail = self._status.get((stored.network, user_id))
            extra = f" ({detail.detail})" if detail is not None and detail.detail else ""
            lines.append(f"{stored.network}: {stored.remote_name} - {shown}{extra}")
        return lines

    def _open(self, stored: StoredLogin) -> PuppetLogin | None:
        credentials: dict[str, str] = {}
        if stored.credentials is not None:
            if self._cipher is None:
                log.error("cannot restore %s's %s login: no credentials key is configured", stored.owner,
                          stored.network)
                return None
            try:
                credentials = self._cipher.decrypt(stored.credentials, context=login_id(stored.network, stored.owner))
            except Exception as error:
                log.error("cannot restore %s's %s login: %s", stored.owner, stored.network, error)
                return None
        return PuppetLogin(RemoteUserID(stored.remote_user_id), stored.remote_name, credentials)

    def _remember(self, network: str, user_id: UserID, login: PuppetLogin) -> None:
        self._puppet_logins[(network, user_id)] = login
        self._owners[(network, login.remote_user_id)] = user_id

    async def _connect(self, network: str, user_id: UserID, login: PuppetLogin, *, announce: bool) -> str | None:
        """Connect a puppet; returns the problem (None when connected)."""
        connector = self._connectors[network]
        assert isinstance(connector, LoginProvider)
        await self.report(network, user_id, SessionState.CONNECTING, None)
        try:
            session = await connector.connect_puppet(user_id, login)
        except LoginFailed as error:
            state = SessionState.BAD_CREDENTIALS if error.bad_credentials else SessionState.UNKNOWN_ERROR
            await self.report(network, user_id, state, str(error), tell=announce)
            return str(error)
        except Exception as error:
            log.exception("%s: connecting %s's puppet failed", network, user_id)
            await self.report(network, user_id, SessionState.TRANSIENT_DISCONNECT, repr(error), tell=announce)
            return f"{type(error).__name__} (the bridge will not retry by itself: send 'reconnect {network}')"
        self._puppets[(network, user_id)] = session
        await self.report(network, user_id, SessionState.CONNECTED, None, tell=announce)
        return None

    # ---- status ----------------------------------------------------------------------------

    async def report(
        self, network: str, owner: UserID | None, state: SessionState, detail: str | None, *, tell: bool = True
    ) -> None:
        """A session's state changed (from the connector or from the core itself)."""
        status = self._status.setdefault((network, owner), _Status())
        previous = status.state
        status.state, status.detail = state, detail
        if status.pending is not None:
            status.pending.cancel()
            status.pending = None
        if owner is None:
            log.info("%s bot session: %s%s", network, state.value, f" ({detail})" if detail else "")
            return
        if owner is not None and (network, owner) in self._puppet_logins:
            try:
                await self._logins.set_state(network, owner, state.value, detail)
            except Exception:
                log.exception("could not store the state of %s's %s login", owner, network)
        if not tell or state is previous:
            return
        if state is SessionState.CONNECTED:
            if status.told_problem:
                status.told_problem = False
                await self._tell(owner, f"Your {network} connection is back.")
            return
        if state is SessionState.TRANSIENT_DISCONNECT:
            status.pending = self._spawn(self._tell_later(network, owner, status))
            return
        if state in _PROBLEMS:
            status.told_problem = True
            await self._tell(owner, _problem_text(network, state, detail))

    async def _tell_later(self, network: str, owner: UserID, status: _Status) -> None:
        await asyncio.sleep(self._debounce)
        status.pending = None
        if status.state is SessionState.TRANSIENT_DISCONNECT:
            status.told_problem = True
            await self._tell(owner, _problem_text(network, status.state, status.detail))

    async def _tell(self, owner: UserID, text: str) -> None:
        try:
            await self._notify_owner(owner, text)
        except Exception:
            log.exception("could not tell %s: %s", owner, text)

    def _spawn(self, coroutine: Coroutine[object, object, object]) -> asyncio.Task[object]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in [*self._puppets.values(), *(held.session for held in self._virtual.values())]:
            await _close(session)
        self._puppets.clear()
        self._virtual.clear()


def _problem_text(network: str, state: SessionState, detail: str | None) -> str:
    return f"Your {network} session {_PROBLEMS[state]}" + (f": {detail}." if detail else ".")


async def _close(session: RemoteSession) -> None:
    if isinstance(session, ClosableSession):
        with contextlib.suppress(Exception):
            await session.close()


__all__ = ["OwnerNotifier", "Sessions"]
