"""A logged-in Matrix user's own IRC connection held by a keeper: the keeper identifies it (SASL
through Atheme) with the account sealed in its spec, and a wrong password comes back to the bridge
as the server's refusal, after one attempt. First a keeper in this process and the bridge's side
of it (``KeeperClient``, ``KeptLink``); then end to end (Synapse, `bridgekit run`, a keeper
process, Redis, InspIRCd linked to Atheme), the login flow in the management room."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bridgekit import CredentialCipher
from bridgekit.credentials import generate_key
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import BridgeStarter, MakeMatrixUser, SynapseHarness
from bridgekit.testing.waiting import eventually
from bridges.irc.account_login import AccountLogin
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.client import KeeperClient
from bridges.irc.keeper.kept_link import KeptLink
from bridges.irc.keeper.sealing import seal
from bridges.irc.keeper.server import Keeper
from bridges.irc.link import AccountRefused
from tests.integration.test_irc_puppets import log_in, portal, said_in, whois_account
from tests.irc_fixtures import MakeIrcClient
from tests.keeper_fixtures import StartKeeper
from tests.servers.atheme import ServicesIRCd
from tests.services_fixtures import MakeAccount, Services

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def puppet_spec(cipher: CredentialCipher, conn: str, server: ServicesIRCd, login: AccountLogin) -> p.ConnectionSpec:
    return p.ConnectionSpec(
        conn, "net", server.host, server.port, False, login.account, "puppet", "alice",
        next_nicks=(f"{login.account[:20]}_",), lines_per_second=0,
        sealed=seal(cipher, conn, password=None, account=login),
    )


async def test_a_puppet_identifies_in_the_keeper_and_a_wrong_password_is_refused_once(
    redis: Redis, redis_url: str, services: Services, make_account: MakeAccount, make_irc_client: MakeIrcClient,
) -> None:
    cipher = CredentialCipher(generate_key())
    keeper = Keeper(redis, "ka", cipher=cipher)
    running = asyncio.create_task(keeper.run())
    client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), "net", "ka")
    await client.start()
    account = await make_account("kept")
    puppet = p.connection_id("net", "@alice:x", "puppet")
    link = KeptLink(client, puppet_spec(cipher, puppet, services.hub, AccountLogin(account.name, account.password)),
                    persist=True, timeout=30)
    try:
        await link.connect()
        assert link.nick == account.name  # her own nick, no suffix
        observer = await make_irc_client("observer", server=services.hub)
        observer.send_raw(f"WHOIS {account.name}")
        whois = await observer.wait_for(lambda line: line.command == "330" and line.params[1] == account.name)
        assert whois.params[2].lower() == account.name.lower()  # identified: "is logged in as"
        assert account.password not in str(await redis.hgetall(p.connections_key("ka")))  # sealed

        # `login` again with a wrong password (her puppet stays): the check is refused with
        # Atheme's reason, once, and the keeper forgets it (not made again after its restart).
        check = p.connection_id("net", "@alice:x", "login")
        assert check != puppet != p.connection_id("net", "@alice:x")
        wrong = KeptLink(client, puppet_spec(cipher, check, services.hub, AccountLogin(account.name, "wrong-pass")),
                         persist=True, timeout=30)
        with pytest.raises(AccountRefused, match="SASL"):
            await wrong.connect()

        async def forgotten() -> bool:
            return check not in keeper.held and not await redis.hexists(p.connections_key("ka"), check)

        await eventually(forgotten, what="the refused connection forgotten")
        assert link.connected
        assert puppet in keeper.held
    finally:
        await link.close("done")
        await client.stop()
        await keeper.stop(hang_up=True)
        running.cancel()
        await asyncio.wait({running}, timeout=5)


async def test_a_sasl_login_through_a_keeper_gives_her_own_nick_identified_across_a_bridge_kill(
    slot: AppserviceSlot, run_bridge: BridgeStarter, services: Services, synapse: SynapseHarness, redis_url: str,
    start_keeper: StartKeeper, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    make_account: MakeAccount,
) -> None:
    keeper = start_keeper(redis_url, credentials_key=run_bridge.credentials_key)
    bridge = await run_bridge(
        slot, "irc",
        connector={"server": services.hub.host, "port": services.hub.port, "tls": False, "lines_per_second": 0,
                   "bot_nick": f"bridge{secrets.token_hex(2)}", "virtual_users": True,
                   "keeper": {"redis_url": redis_url}},
        permissions={synapse.server_name: "admin"},
    )
    channel = f"#kacct{secrets.token_hex(3)}"
    account = await make_account("kalice")
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob", server=services.hub)
    await bob.join(channel)
    room_id = await portal(alice, slot, channel)
    await alice.send_text(room_id, "as my virtual self")  # her [m] connection, in the keeper too
    await bob.wait_for(said_in(channel, "as my virtual self"))

    refused = await log_in(alice, slot, account, "not-her-password")
    assert refused == f"Login to {slot.connector} failed: SASL: SASL authentication failed", keeper.log()
    assert (await log_in(alice, slot, account)).startswith(f"Logged in to {slot.connector} as {account.name}")
    await alice.send_text(room_id, "hello as myself")
    said = await bob.wait_for(said_in(channel, "hello as myself"))
    assert said.source == account.name  # her own nick: no [m], no suffix
    bob.send_raw(f"WHOIS {account.name}")
    whois = await bob.wait_for(whois_account(account.name))
    assert whois.params[2].lower() == account.name.lower()  # identified, by the keeper
    assert keeper.log().count("refused the account") == 1, keeper.log()  # one attempt, no loop

    # A bridge SIGKILLed and started again takes her puppet back as it is (same connection ID):
    # IRC sees no QUIT, JOIN or NICK of hers, and she still speaks as herself.
    before = bob.mark()
    await bridge.kill()
    await bridge.start_ready()
    await alice.send_text(room_id, "after a restart")
    said = await bob.wait_for(said_in(channel, "after a restart"), since=before, timeout=60)
    assert said.source == account.name
    assert bob.lines(lambda line: line.command in ("QUIT", "JOIN", "PART", "NICK"), since=before) == []
    assert keeper.log().count(f"~puppet/{alice.user_id}: connected as") == 1, keeper.log()
