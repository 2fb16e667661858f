"""IRC server fixtures: real InspIRCd and ngIRCd, each started once per test session.

- ``inspircd`` (session): an :class:`~tests.servers.ircd.InspIRCd`, the IRCv3 server bridge tests
  run against; flood protection off, lines up to 4096 bytes accepted.
- ``inspircd_flood`` (session, started on first use): InspIRCd with default-like flood limits,
  for tests of the bridge's own flood control.
- ``ngircd`` (session): an :class:`~tests.servers.ircd.NgIRCd`, for many fast connections.
- ``make_irc_client`` (function): ``await make_irc_client("bob", caps=[...])`` -> an
  :class:`~bridgekit.demo.irc_client.IrcTestClient` registered on ``inspircd`` as ``bob<random>``
  (``server=ngircd`` to use another server); every client is closed after the test.

A missing server binary skips the tests that need it, naming ``scripts/setup``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from tests.servers.ircd import InspIRCd, NgIRCd

ServerT = TypeVar("ServerT", InspIRCd, NgIRCd)


class IrcServer(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


class MakeIrcClient(Protocol):
    def __call__(
        self,
        nick: str = "user",
        *,
        caps: Sequence[str] = (),
        server: IrcServer | None = None,
        unique: bool = True,
        **kwargs: Any,
    ) -> Awaitable[IrcTestClient]: ...


def _run_server(cls: type[ServerT], data_dir: Path, **kwargs: Any) -> Iterator[ServerT]:
    if not cls.available():
        pytest.skip(
            f"{cls.binary} is not installed: run scripts/setup as root "
            f"(or apt-get install --no-install-recommends {cls.binary})"
        )
    server = cls(data_dir, **kwargs)
    try:
        # From the main thread on purpose: the child's death signal is tied to the thread that
        # spawned it (see bridgekit/testing/synapse_harness.py).
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def inspircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspIRCd]:
    """InspIRCd for the session (flood protection off)."""
    yield from _run_server(InspIRCd, tmp_path_factory.mktemp("inspircd"))


@pytest.fixture(scope="session")
def inspircd_flood(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspIRCd]:
    """InspIRCd with its default-like flood limits (a client sending ~10 fast lines is throttled
    or disconnected), for tests of our own flood control."""
    yield from _run_server(InspIRCd, tmp_path_factory.mktemp("inspircd-flood"), flood_protection=True)


@pytest.fixture(scope="session")
def ngircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NgIRCd]:
    """ngIRCd for the session (penalty off): fast registrations, no IRCv3."""
    yield from _run_server(NgIRCd, tmp_path_factory.mktemp("ngircd"))


def unique_nick(base: str) -> str:
    """``base`` plus a random suffix, within NICKLEN 30 (nicks must not collide across tests)."""
    return f"{base[:23]}{secrets.token_hex(3)}"


@pytest.fixture
async def make_irc_client(inspircd: InspIRCd) -> AsyncIterator[MakeIrcClient]:
    """``await make_irc_client("bob", caps=["message-tags"])``: a registered client on InspIRCd
    (or ``server=``). The nick gets a random suffix unless ``unique=False``."""
    clients: list[IrcTestClient] = []

    async def make(
        nick: str = "user",
        *,
        caps: Sequence[str] = (),
        server: IrcServer | None = None,
        unique: bool = True,
        **kwargs: Any,
    ) -> IrcTestClient:
        target: IrcServer = server if server is not None else inspircd
        client = await IrcTestClient.connect(
            target.host, target.port, unique_nick(nick) if unique else nick, caps=caps, **kwargs
        )
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


__all__ = ["IrcServer", "MakeIrcClient", "unique_nick"]
