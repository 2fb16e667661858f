"""One real Synapse for a whole test session, with the appservice slots the tests play.

Synapse reads appservice registrations only at start-up, so the session reserves every slot the
tests need before starting it (each with its own ID, namespace prefix, tokens and a reserved
loopback port for the bridge or fault proxy a test starts later):

- ``main``: bridge tests; users ``@_bk_.*``, bot ``@_bk_bot``, aliases ``#_bk_.*``; not rate-limited.
- ``faulty``: prefix ``_bkf_``; its registration URL is a port for a FaultProxy in front of the
  bridge (``slot.port``), the bridge itself listens on ``slot.bridge_port``.
- ``ratelimited``: prefix ``_bkr_``, ``rate_limited: true``. The server's ``rc_message`` is low
  (0.5/s, burst 3) for it; human test users are exempted with the admin API.

The pytest fixtures around it are in :mod:`bridgekit.testing.pytest_plugin`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridgekit.config import BridgeConfig
from bridgekit.credentials import generate_key
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.registration import build_double_puppet_registration
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.synapse import AppserviceSlot, SynapseServer

# Low enough that a burst of messages from the rate-limited appservice gets 429s quickly.
RATELIMITED_MESSAGE_RATE = (0.5, 3.0)

MakeMatrixUser = Callable[..., Awaitable[MatrixTestClient]]
RunBridge = Callable[..., Awaitable[BridgeProcess]]


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


@asynccontextmanager
async def running_synapse(
    data_dir: Path, *, extra_config: Mapping[str, Any] | None = None
) -> AsyncIterator[SynapseHarness]:
    """Start Synapse with every appservice slot registered; stop it (and free the ports) on exit.
    ``extra_config``: see :class:`SynapseServer` (the session's shared Synapse takes none)."""
    server = SynapseServer(data_dir, message_rate=RATELIMITED_MESSAGE_RATE, extra_config=extra_config)
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


class BridgeStarter:
    """``await starter(slot, factory, **overrides)``: a ``bridgekit run`` process playing ``slot``
    with one connector (``factory`` = "module:Class"), ready to serve. ``connector`` holds the
    connector's own settings; ``overrides`` are merged into the config. :meth:`stop_all` stops
    every bridge it started.

    The bridge is a process of its own: it imports the connector from its installed package, or
    from ``python_path`` (the test run's root directory, so ``tests.my_connector:Class`` works)."""

    def __init__(self, work_dir: Path, python_path: Sequence[Path] = ()) -> None:
        self.work_dir = work_dir
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.python_path = os.pathsep.join([*(str(p) for p in python_path), *inherited])
        # A credentials key, so puppet logins work (stored encrypted like in production).
        self.credentials_key = generate_key()
        self.started: list[BridgeProcess] = []

    async def __call__(
        self, slot: AppserviceSlot, factory: str, *, connector: dict[str, Any] | None = None, **overrides: Any
    ) -> BridgeProcess:
        name = f"{slot.name}-{len(self.started)}"
        connectors = overrides.pop("connectors", {})
        section = {"factory": factory, **(connector or {})}
        config = slot.write_bridge_config(
            self.work_dir / f"{name}.yaml", f"sqlite+aiosqlite:///{self.work_dir / f'{name}.db'}",
            connectors={slot.connector: section, **connectors}, **overrides,
        )
        bridge = BridgeProcess(
            config, env={"PYTHONPATH": self.python_path, "BRIDGEKIT_CREDENTIALS_KEY": self.credentials_key}
        )
        self.started.append(bridge)
        await bridge.start_ready()
        return bridge

    async def stop_all(self) -> None:
        for bridge in self.started:
            await bridge.stop()
