"""bridgekit's pytest plugin: a real Synapse, real ``bridgekit run`` processes and chatnet, as
fixtures for testing a connector with the conformance kit (``bridgekit.testing.conformance``).

Registered through the ``pytest11`` entry point, so ``pip install 'bridgekit[testing]'`` is all a
connector's test suite needs; bridgekit's own suite uses the same fixtures. The fixtures:

- ``synapse`` (session): one Synapse for the whole run, with the appservice slots registered
  (:class:`~bridgekit.testing.synapse_harness.SynapseHarness`);
- ``slot``: its ``main`` slot (the appservice a bridge plays: tokens, ports, ghost prefix);
- ``make_matrix_user`` / ``matrix_user``: fresh logged-in Matrix users;
- ``run_bridge``: ``await run_bridge(slot, "module:Class", connector={...})`` starts a bridge with
  that connector and returns once it is ready; stopped at the end of the test;
- ``chatnet``: a small chat network on a loopback port (the tutorial connector's network).

This module is imported by every pytest run on a machine where bridgekit is installed, so it
imports nothing at load time beyond pytest (and pytest-asyncio, which pytest has loaded already
when it is installed); the harness is imported inside the fixtures. Without the ``testing``
extra the fixtures skip, saying what to install.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from bridgekit.demo.matrix_client import MatrixTestClient
    from bridgekit.testing.chatnet import ChatnetServer
    from bridgekit.testing.synapse import AppserviceSlot
    from bridgekit.testing.synapse_harness import BridgeStarter, MakeMatrixUser, SynapseHarness

INSTALL = "pip install 'bridgekit[testing]'"
# What the fixtures need beyond bridgekit's runtime: the modules, and the distribution to name.
_NEEDED = {"synapse": "matrix-synapse", "pytest_asyncio": "pytest-asyncio"}

F = TypeVar("F", bound=Callable[..., Any])

_asyncio_fixture: Callable[..., Any] | None
try:
    from pytest_asyncio import fixture as _asyncio_fixture
except ImportError:  # the fixtures skip (``testing_extra``) before any of them is awaited
    _asyncio_fixture = None


def async_fixture(scope: Literal["session", "function"] = "function") -> Callable[[F], F]:
    """A fixture run by pytest-asyncio in the session's event loop: the Synapse fixture's admin
    client lives in that loop, and so must every test and fixture that uses the homeserver."""

    def decorate(function: F) -> F:
        if _asyncio_fixture is None:
            return cast(F, pytest.fixture(scope=scope)(function))
        return cast(F, _asyncio_fixture(scope=scope, loop_scope="session")(function))

    return decorate


@pytest.fixture(scope="session")
def testing_extra(pytestconfig: pytest.Config) -> None:
    """Skips, naming what to install, when the ``testing`` extra is not installed (or pytest-asyncio,
    which runs the fixtures, is turned off)."""
    missing = [dist for module, dist in _NEEDED.items() if importlib.util.find_spec(module) is None]
    if "pytest-asyncio" not in missing and not pytestconfig.pluginmanager.has_plugin("asyncio"):
        missing.append("pytest-asyncio (turned off with -p no:asyncio)")
    if missing:
        pytest.skip(f"bridgekit's test fixtures need {' and '.join(missing)}: {INSTALL}")


@async_fixture(scope="session")
async def synapse(testing_extra: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SynapseHarness]:
    """Synapse, started once for the session with every appservice slot registered."""
    from bridgekit.testing.synapse_harness import running_synapse

    async with running_synapse(tmp_path_factory.mktemp("synapse")) as harness:
        yield harness


@pytest.fixture
def slot(synapse: SynapseHarness) -> AppserviceSlot:
    """The "main" appservice slot: what a bridge started by ``run_bridge`` plays."""
    return synapse.slot("main")


@async_fixture()
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


@async_fixture()
async def matrix_user(make_matrix_user: MakeMatrixUser) -> MatrixTestClient:
    """One fresh human user."""
    return await make_matrix_user("human")


@async_fixture()
async def run_bridge(
    testing_extra: None, tmp_path: Path, pytestconfig: pytest.Config
) -> AsyncIterator[BridgeStarter]:
    """``await run_bridge(slot, "module:Class", connector={...}, **overrides)``: a ``bridgekit run``
    process playing ``slot`` with that connector, ready to serve; stopped at the end of the test.
    The connector is imported from its installed package or from the run's root directory."""
    from bridgekit.testing.synapse_harness import BridgeStarter

    starter = BridgeStarter(tmp_path, python_path=[pytestconfig.rootpath])
    try:
        yield starter
    finally:
        await starter.stop_all()


@async_fixture()
async def chatnet(testing_extra: None) -> AsyncIterator[ChatnetServer]:
    """A chatnet server on a free loopback port (``bridgekit.testing.chatnet``)."""
    from bridgekit.testing.chatnet import ChatnetServer

    server = ChatnetServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
