"""The bridge's own flood control against an IRC server's real limits: InspIRCd with its default
connect-class flood settings (``threshold`` 10, ``commandrate`` 1000, fake lag, a 10 KiB receive
queue), where a client that writes ~10 lines at once is lagged and then cut off ("RecvQ
exceeded" / "Excess Flood"). The bridge's shipped pacing (``lines_per_second``, ``burst``: not
set here, so their defaults) must carry a 50-line paste whole."""

from __future__ import annotations

import secrets

import pytest

from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.integration.test_irc_bridge import portal, said_in
from tests.irc_fixtures import MakeIrcClient
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

PASTE_LINES = 50


async def test_a_50_line_paste_arrives_whole_under_default_flood_limits(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, inspircd_flood: InspIRCd,
) -> None:
    """alice's own connection (virtual users, the default) pastes 50 lines of ~300 bytes: about
    50 s at the shipped 1 line a second. Measured: at 2 lines a second InspIRCd's fake lag held
    the excess in its receive queue and cut the connection ("RecvQ exceeded") in a longer paste."""
    channel = f"#paste{secrets.token_hex(3)}"
    await run_bridge(
        slot, "irc",
        connector={"server": inspircd_flood.host, "port": inspircd_flood.port, "tls": False,
                   "bot_nick": f"bridge{secrets.token_hex(2)}", "virtual_users": True,
                   "max_lines": PASTE_LINES},
        permissions={synapse.server_name: "admin"},
    )
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob", server=inspircd_flood)
    room_id = await portal(alice, slot, channel)
    await bob.join(channel)
    await alice.send_text(room_id, "warming up")  # alice's own connection (or the relay) is in
    first = await bob.wait_for(said_in(channel, "warming up"))
    assert first.source is not None

    # Lines of ~300 bytes, like a pasted log: the server's receive queue counts bytes.
    filler = "x" * 260
    expected = [f"paste {n:02d} {filler}" for n in range(PASTE_LINES)]
    since = bob.mark()
    await alice.send_text(room_id, "\n".join(expected))

    lines = await bob.wait_for_count(said_in(channel, "paste "), PASTE_LINES, timeout=150, since=since)
    said = [line.text[line.text.index("paste "):] for line in lines]
    assert said == expected  # all fifty, in order, once each
    quits = bob.lines(lambda line: line.command == "QUIT" and line.is_from(str(first.source)), since=since)
    assert not quits, [q.raw for q in quits]  # never flood-killed
    await alice.send_text(room_id, "still here")
    after = await bob.wait_for(said_in(channel, "still here"), timeout=60, since=since)
    assert after.source == first.source  # the same connection: it was never cut
