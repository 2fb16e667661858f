"""The services harness itself: Atheme answers on the hub and on the SASL-less leaf, accounts can
be registered, the hub offers SASL PLAIN and the leaf does not."""

from __future__ import annotations

import pytest

from bridgekit.demo.irc_client import IrcTestClient
from tests.irc_fixtures import unique_nick
from tests.services_fixtures import MakeAccount, Services

pytestmark = pytest.mark.integration


async def offered_caps(host: str, port: int) -> dict[str, str]:
    client = await IrcTestClient.connect(host, port, unique_nick("caps"), caps=["message-tags"])
    try:
        return dict(client.caps_available)
    finally:
        await client.close()


async def test_the_hub_offers_sasl_plain_and_the_leaf_does_not(services: Services) -> None:
    hub = await offered_caps(services.hub.host, services.hub.port)
    leaf = await offered_caps(services.no_sasl.host, services.no_sasl.port)
    assert "PLAIN" in hub["sasl"].split(",")
    assert "sasl" not in leaf
    assert "account-tag" in hub
    assert "account-tag" in leaf


async def test_an_account_registered_on_the_hub_identifies_on_the_leaf(
    services: Services, make_account: MakeAccount
) -> None:
    account = await make_account("harness")
    client = await IrcTestClient.connect(services.no_sasl.host, services.no_sasl.port, unique_nick("other"))
    try:
        await client.privmsg("NickServ", f"IDENTIFY {account.name} {account.password}")
        answer = await client.wait_for(lambda line: line.command == "900" or (
            line.command == "NOTICE" and line.is_from("NickServ") and "identified" in line.text))
        assert account.name.lower() in answer.text.lower()
    finally:
        await client.close()
