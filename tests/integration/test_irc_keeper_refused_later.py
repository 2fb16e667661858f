"""A logged-in user's puppet held by a keeper, whose password is changed on IRC: at its next
reconnect (an operator KILLs it) the server refuses the old password, and the user is told as
without a keeper: one notice in the management room, and ``status`` shows the login refused.
Synapse, `bridgekit run`, a keeper process, Redis, InspIRCd linked to Atheme."""

from __future__ import annotations

import secrets

import pytest

from bridgekit.testing.matrix_steps import management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import BridgeStarter, MakeMatrixUser, SynapseHarness
from tests.integration.test_irc_puppets import identified_client, log_in
from tests.irc_fixtures import MakeIrcClient
from tests.keeper_fixtures import StartKeeper
from tests.services_fixtures import MakeAccount, Services

pytestmark = pytest.mark.integration


async def test_a_password_changed_on_irc_ends_the_kept_puppet_with_one_notice(
    slot: AppserviceSlot, run_bridge: BridgeStarter, services: Services, synapse: SynapseHarness, redis_url: str,
    start_keeper: StartKeeper, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    make_account: MakeAccount,
) -> None:
    keeper = start_keeper(redis_url, credentials_key=run_bridge.credentials_key)
    await run_bridge(
        slot, "irc",
        connector={"server": services.hub.host, "port": services.hub.port, "tls": False, "lines_per_second": 0,
                   "bot_nick": f"bridge{secrets.token_hex(2)}", "keeper": {"redis_url": redis_url}},
        permissions={synapse.server_name: "admin"},
    )
    account = await make_account("krefused")
    alice = await make_matrix_user("alice")
    dm = await management_room(alice, slot)
    assert (await log_in(alice, slot, account, dm=dm)).startswith(f"Logged in to {slot.connector} as {account.name}")

    # Her password changes on IRC (from another client of hers), then her puppet's connection drops.
    phone = await identified_client(make_irc_client, services.hub, account)
    await phone.privmsg("NickServ", f"SET PASSWORD {secrets.token_urlsafe(12)}")
    changed = await phone.wait_for(lambda line: line.is_from("NickServ") and "password" in line.text.lower())
    assert "changed" in changed.text.lower(), changed.raw
    oper = await make_irc_client("oper", server=services.hub)
    oper.send_raw("OPER oper operpw")
    await oper.wait_for(lambda line: line.command == "381")
    oper.send_raw(f"KILL {account.name} :her password changed")

    refused = f"Your {slot.connector} session was refused by the network: log in again ('login')"
    told = await alice.wait_for_event(dm, notice(slot.bot_user_id, refused), timeout=60)
    assert told["content"]["body"] == f"{refused}: SASL: SASL authentication failed.", keeper.log()
    problems = [e for e in alice.events(dm) if e.get("sender") == slot.bot_user_id
                and str(e["content"].get("body", "")).startswith(f"Your {slot.connector} session")]
    assert problems == [told]  # one notice: not a "reconnecting" one before it
    assert keeper.log().count("refused the account") == 1, keeper.log()  # tried once, then stopped

    await alice.send_text(dm, "status")
    status = await alice.wait_for_event(dm, notice(slot.bot_user_id, "Your permission level"))
    assert "bad-credentials" in status["content"]["body"], status["content"]["body"]
