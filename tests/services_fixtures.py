"""IRC services fixtures: InspIRCd linked to Atheme (NickServ, SaslServ), started once per session.

- ``services`` (session): a :class:`Services` with ``hub`` (an InspIRCd offering SASL PLAIN through
  Atheme) and ``no_sasl`` (an InspIRCd leaf linked to the hub, same accounts, SASL not offered:
  NickServ IDENTIFY is the only way to identify there).
- ``make_account`` (function): ``await make_account("alice")`` -> an :class:`Account` registered
  with NickServ (name made unique, password random, e-mail at example.test).

A missing ``atheme-services`` or ``inspircd`` skips the tests that need them, naming ``scripts/setup``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from bridgekit.demo.irc_client import IrcTestClient, Line
from tests.irc_fixtures import unique_nick
from tests.servers.atheme import Atheme, ServicesIRCd, wait_for_services


@dataclass(frozen=True)
class Services:
    hub: ServicesIRCd
    no_sasl: ServicesIRCd
    atheme: Atheme


@dataclass(frozen=True)
class Account:
    name: str
    password: str


class MakeAccount(Protocol):
    def __call__(self, name: str = "acct") -> Awaitable[Account]: ...


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """InspIRCd + Atheme (+ a SASL-less leaf) for the session; stopped by PID."""
    for needed, available in (("inspircd", ServicesIRCd.available()), ("atheme-services", Atheme.available())):
        if not available:
            pytest.skip(f"{needed} is not installed: run scripts/setup as root "
                        f"(or apt-get install --no-install-recommends {needed})")
    base = tmp_path_factory.mktemp("services")
    hub = ServicesIRCd(base / "hub")
    atheme = Atheme(base / "atheme", hub)
    leaf = ServicesIRCd(base / "leaf", uplink=hub)
    try:
        # From the main thread on purpose: children's death signals are tied to the spawning thread.
        hub.start()
        atheme.start()
        leaf.start()
        wait_for_services(leaf, time.monotonic() + 30, atheme)
        yield Services(hub, leaf, atheme)
    finally:
        leaf.stop()
        atheme.stop()
        hub.stop()


async def register_account(hub: ServicesIRCd, name: str, password: str) -> None:
    """``NickServ REGISTER`` as ``name`` from a plain client on ``hub``."""
    client = await IrcTestClient.connect(hub.host, hub.port, name)
    try:
        await client.privmsg("NickServ", f"REGISTER {password} {name}@example.test")

        def answered(line: Line) -> bool:
            return line.command == "NOTICE" and line.is_from("NickServ") and (
                "registered" in line.text.lower() or "error" in line.text.lower() or "cannot" in line.text.lower())

        answer = await client.wait_for(answered)
        assert "is now registered" in answer.text, answer.raw
        # Until the server has taken the QUIT the nick is still in use: a test connecting with
        # it at once found it taken (close() alone does not wait for the server).
        await client.quit("registered")
    finally:
        await client.close()


@pytest.fixture
def make_account(services: Services) -> MakeAccount:
    async def make(name: str = "acct") -> Account:
        account = Account(unique_nick(name), secrets.token_urlsafe(12))
        await register_account(services.hub, account.name, account.password)
        return account

    return make


__all__ = ["Account", "MakeAccount", "Services", "register_account"]
