"""Synapse fixtures: one real homeserver per test session.

Synapse reads appservice registrations only at start-up, so the session reserves every slot the
tests need before starting it (each with its own ID, namespace prefix, tokens and a reserved
loopback port for the bridge or fault proxy a test starts later):

- ``main``: bridge tests; users ``@_bk_.*``, bot ``@_bk_bot``, aliases ``#_bk_.*``; not rate-limited.
- ``faulty``: prefix ``_bkf_``; its registration URL is a port for a FaultProxy in front of the
  bridge (``slot.port``), the bridge itself listens on ``slot.bridge_port``.
- ``ratelimited``: prefix ``_bkr_``, ``rate_limited: true``. The server's ``rc_message`` is low
  (0.5/s, burst 3) for it; human test users are exempted with the admin API.

Fixtures: ``synapse`` (session, a :class:`SynapseHarness`), ``make_matrix_user`` (async factory of
fresh, rate-limit-exempt human users), ``matrix_user`` (one such user).
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bridgekit.config import BridgeConfig
from bridgekit.credentials import generate_key
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.ids import UserID
from bridgekit.matrix import MatrixClient
from bridgekit.registration import build_double_puppet_registration
from tests.servers.bridge_process import BridgeProcess
from tests.servers.synapse import AppserviceSlot, SynapseServer
from tests.support.memory import InMemoryState

# Low enough that a burst of messages from the rate-limited appservice gets 429s quickly.
RATELIMITED_MESSAGE_RATE = (0.5, 3.0)

MakeMatrixUser = Callable[..., Awaitable[MatrixTestClient]]


@dataclass
class SynapseHarness:
    """The session's homeserver, its appservice slots and an admin client."""

    server: SynapseServer
    slots: dict[str, AppserviceSlot]
    admin: MatrixTestClient
    double_puppet_registration: Path
    """The non-exclusive, URL-less registration covering every local user (double puppeting)."""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def server_name(self) -> str:
        return self.server.server_name

    @property
    def shared_secret(self) -> str:
        return self.server.shared_secret

    def slot(self, name: str) -> AppserviceSlot:
        return self.slots[name]

    async def create_user(self, localpart: str, *, admin: bool = False) -> MatrixTestClient:
        """A human user, exempted from rate limits (``rc_message`` is low for the whole server)."""
        client = await MatrixTestClient.create_user(self.server, localpart, admin=admin)
        await self.admin.override_ratelimit(client.user_id)
        return client


def _make_slots(url: str, server_name: str) -> dict[str, AppserviceSlot]:
    # Slot IDs carry a random suffix so logs of concurrent sessions are told apart.
    tag = secrets.token_hex(3)

    def slot(
        name: str, prefix: str, *, rate_limited: bool = False, proxied: bool = False, ephemeral: bool = False,
        protocols: tuple[str, ...] = (),
    ) -> AppserviceSlot:
        return AppserviceSlot(
            name, appservice_id=f"bk-{name}-{tag}", prefix=prefix, homeserver_url=url,
            server_name=server_name, rate_limited=rate_limited, proxied=proxied, ephemeral=ephemeral,
            protocols=protocols,
        )

    return {
        "main": slot("main", "_bk_", ephemeral=True, protocols=("irc",)),
        "faulty": slot("faulty", "_bkf_", proxied=True),
        "ratelimited": slot("ratelimited", "_bkr_", rate_limited=True),
    }


def _write_double_puppet_registration(path: Path, slot: AppserviceSlot) -> Path:
    # Written by the same function `bridgekit generate-registration --double-puppet` uses.
    config = BridgeConfig.model_validate(slot.bridge_config())
    registration = build_double_puppet_registration(
        config, as_token=secrets.token_urlsafe(32), hs_token=secrets.token_urlsafe(32)
    )
    path.write_text(yaml.safe_dump(registration, sort_keys=False))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
async def synapse(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SynapseHarness]:
    """Start Synapse once for the session with every appservice slot registered."""
    if importlib.util.find_spec("synapse") is None:
        pytest.skip("matrix-synapse is not installed (pip install -e '.[test]')")
    data_dir = tmp_path_factory.mktemp("synapse")
    server = SynapseServer(data_dir, message_rate=RATELIMITED_MESSAGE_RATE)
    slots: dict[str, AppserviceSlot] = {}
    admin: MatrixTestClient | None = None
    try:
        server.write_config()  # reserves the port, which the slots' bridge configs point at
        slots = _make_slots(server.url, server.server_name)
        double_puppet = _write_double_puppet_registration(data_dir / "doublepuppet.yaml", slots["main"])
        server.appservice_registrations = [
            *(slot.write_registration(data_dir / f"appservice-{name}.yaml") for name, slot in slots.items()),
            double_puppet,
        ]
        # Started from the main thread on purpose: the child's death signal is tied to the
        # thread that spawned it, and a worker thread may exit long before the session ends.
        server.start()
        admin = await MatrixTestClient.create_user(server, "harness_admin", admin=True)
        await admin.override_ratelimit(admin.user_id)
        yield SynapseHarness(server, slots, admin, double_puppet)
    finally:
        if admin is not None:
            await admin.aclose()
        server.stop()
        for slot in slots.values():
            slot.release()


@pytest.fixture
async def make_matrix_user(synapse: SynapseHarness) -> AsyncIterator[MakeMatrixUser]:
    """``await make_matrix_user("alice")`` -> a fresh logged-in user ``@alice_<random>``."""
    clients: list[MatrixTestClient] = []

    async def make(name: str = "user", *, admin: bool = False) -> MatrixTestClient:
        client = await synapse.create_user(f"{name}_{secrets.token_hex(4)}", admin=admin)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture
def slot(synapse: SynapseHarness) -> AppserviceSlot:
    """The "main" appservice slot."""
    return synapse.slot("main")


@pytest.fixture
async def client(synapse: SynapseHarness, slot: AppserviceSlot) -> AsyncIterator[MatrixClient]:
    """bridgekit's Matrix client as the main slot's appservice (memory kept in a dict)."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield MatrixClient(
            http, homeserver_url=synapse.url, as_token=slot.as_token,
            bot_user_id=UserID(slot.bot_user_id), memory=InMemoryState(),
        )


RunBridge = Callable[..., Awaitable[BridgeProcess]]
KEY = generate_key()
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def run_bridge(tmp_path: Path) -> AsyncIterator[RunBridge]:
    """``await run_bridge(slot, factory, **overrides)``: a ``bridgekit run`` process playing the
    slot with one connector (``factory`` = "module:Class", importable from the repository),
    ready to serve; stopped at the end of the test. ``overrides`` are merged into the config."""
    started: list[BridgeProcess] = []

    async def run(
        slot: AppserviceSlot, factory: str, *, connector: dict[str, Any] | None = None, **overrides: Any
    ) -> BridgeProcess:
        name = f"{slot.name}-{len(started)}"
        connectors = overrides.pop("connectors", {})
        section = {"factory": factory, **(connector or {})}
        config = slot.write_bridge_config(
            tmp_path / f"{name}.yaml", f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
            connectors={slot.connector: section, **connectors}, **overrides,
        )
        # A credentials key, so puppet logins work (stored encrypted like in production).
        bridge = BridgeProcess(config, env={"PYTHONPATH": str(REPO_ROOT), "BRIDGEKIT_CREDENTIALS_KEY": KEY})
        started.append(bridge)
        await bridge.start_ready()
        return bridge

    try:
        yield run
    finally:
        for bridge in started:
            await bridge.stop()


@pytest.fixture
async def matrix_user(make_matrix_user: MakeMatrixUser) -> MatrixTestClient:
    """One fresh human user."""
    return await make_matrix_user("human")
