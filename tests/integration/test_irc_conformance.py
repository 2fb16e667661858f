"""The conformance kit run against the IRC bridge (relay mode) on Synapse and InspIRCd: the same
checks memonet passes, minus what IRC does not have (edits, deletions: skipped, visibly)."""

from __future__ import annotations

import secrets

import pytest

from bridgekit.testing.conformance import ConformanceEnv, ConnectorConformance
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd
from tests.support.irc_driver import IrcDriver

pytestmark = pytest.mark.integration


class TestIrcRelay(ConnectorConformance):
    @pytest.fixture
    async def conformance_env(
        self, slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness,
        make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
    ) -> ConformanceEnv:
        channel = f"#kit{secrets.token_hex(3)}"
        bridge = await run_bridge(
            slot, "irc",
            connector={"server": inspircd.host, "port": inspircd.port, "tls": False, "lines_per_second": 0,
                       "bot_nick": f"kit{secrets.token_hex(2)}", "virtual_users": False, "edits": "full",
                       "max_lines": 50},
            permissions={synapse.server_name: "admin"},
        )
        alice = await make_matrix_user("alice")
        bob = await make_irc_client("bob")
        await bob.join(channel)
        room_id = await alice.join(slot.alias(channel))
        await alice.wait_for_membership(room_id, alice.user_id)
        name = alice.user_id.split(":")[0].lstrip("@")
        return ConformanceEnv(
            user=alice, room_id=room_id, chat=channel, remote=IrcDriver(bob, channel), remote_sender=bob.nick,
            ghost_of=lambda nick: slot.ghost_user_id(f"{slot.connector}_{nick.lower()}"),
            bot_user_id=slot.bot_user_id, shown=lambda text: f"<{name}> {text}",
            stop_bridge=bridge.kill, start_bridge=bridge.start_ready,
        )
