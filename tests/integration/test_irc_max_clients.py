"""``max_clients``: the network's cap on Matrix users' own connections. With a cap of 1, alice (in
first) has her own connection; bob, past the cap, is relayed by the bot with the relay template
(``<bob> text``, never his words under the bot's name alone) and told once, privately, why."""

from __future__ import annotations

import secrets

import pytest

from bridgekit.testing.matrix_steps import management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.integration.test_irc_bridge import portal, said_in
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration


async def test_past_max_clients_a_user_is_relayed_with_the_prefix_and_told_once(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, inspircd: InspIRCd,
) -> None:
    channel = f"#cap{secrets.token_hex(3)}"
    bot_nick = f"bridge{secrets.token_hex(2)}"
    await run_bridge(
        slot, "irc",
        connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "bot_nick": bot_nick,
                   "virtual_users": True, "max_clients": 1},
        permissions={synapse.server_name: "admin"},
    )
    alice, bob = await make_matrix_user("alice"), await make_matrix_user("bob")
    carol = await make_irc_client("carol")
    room_id = await portal(alice, slot, channel)
    await carol.join(channel)
    await alice.send_text(room_id, "alice in her own voice")
    own = await carol.wait_for(said_in(channel, "alice in her own voice"), timeout=30)
    assert (own.source or "").split("!")[0].endswith("[m]")
    assert own.text == "alice in her own voice"  # no relay prefix: her connection

    manage = await management_room(bob, slot)
    await bob.join(room_id)
    bob_name = bob.user_id.split(":")[0].lstrip("@")
    for text in ("bob speaking", "bob again"):
        await bob.send_text(room_id, text)
        relayed = await carol.wait_for(said_in(channel, text), timeout=30)
        assert relayed.is_from(bot_nick)
        assert relayed.text == f"<{bob_name}> {text}"
    await bob.wait_for_event(manage, notice(slot.bot_user_id, "max_clients"))
    told = [e for e in await bob.room_messages(manage)
            if e.get("sender") == slot.bot_user_id and "max_clients" in e["content"].get("body", "")]
    assert len(told) == 1, [e["content"]["body"] for e in told]
    assert "relay" in told[0]["content"]["body"]
