"""A 300-member channel: when the bridge joins it, NAMES makes 300 ghosts join the portal, in step
with the channel, without the homeserver answering 429 (counted from the bridge's own metrics).
ngIRCd holds the crowd (it registers a connection in ~0.2 s; InspIRCd takes ~1 s); the 300 plain
connections are opened concurrently, 8 at a time (ngIRCd listens with a backlog of 10: a larger
burst is answered with resets)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import httpx
import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from tests.integration.test_metrics_scrape import scrape
from tests.servers.ircd import NgIRCd

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

CROWD = 300
AT_ONCE = 8


class Member:
    """One plain IRC connection, in the channel; it answers PINGs until closed."""

    def __init__(self, nick: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.nick = nick
        self._reader, self._writer = reader, writer
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, server: NgIRCd, nick: str, channel: str) -> Member:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        member = cls(nick, reader, writer)
        member.write(f"NICK {nick}", f"USER {nick} 0 * :crowd")
        await member.read_until(" 001 ")
        member.write(f"JOIN {channel}")
        await member.read_until(" 366 ")  # end of NAMES: in the channel
        member._task = asyncio.create_task(member._pong())
        return member

    def write(self, *lines: str) -> None:
        self._writer.write("".join(f"{line}\r\n" for line in lines).encode())

    async def read_until(self, marker: str) -> None:
        while True:
            line = (await asyncio.wait_for(self._reader.readline(), 30)).decode(errors="replace")
            if not line:
                raise ConnectionError(f"{self.nick}: the server closed the connection")
            if line.startswith("PING"):
                self.write("PONG" + line[4:].rstrip())
            if marker in line:
                return

    async def _pong(self) -> None:
        while line := (await self._reader.readline()).decode(errors="replace"):
            if line.startswith("PING"):
                self.write("PONG" + line[4:].rstrip())

    async def close(self, reason: str = "bye") -> None:
        if self._task is not None:
            self._task.cancel()
        self.write(f"QUIT :{reason}")
        self._writer.close()


async def test_a_300_member_channels_ghosts_join_in_step_without_a_429(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness, make_matrix_user: MakeMatrixUser,
    ngircd: NgIRCd,
) -> None:
    channel = f"#big{secrets.token_hex(3)}"
    room_of = asyncio.Semaphore(AT_ONCE)

    async def one(index: int) -> Member:
        async with room_of:
            return await Member.join(ngircd, f"crowd{index:03d}{secrets.token_hex(2)}", channel)

    started = time.monotonic()
    crowd = await asyncio.gather(*(one(i) for i in range(CROWD)))
    connected = time.monotonic() - started
    try:
        bridge = await run_bridge(
            slot, "irc", connector={"server": ngircd.host, "port": ngircd.port, "tls": False, "lines_per_second": 0,
                                    "bot_nick": f"bridge{secrets.token_hex(2)}"},
            permissions={synapse.server_name: "admin"},
        )
        alice = await make_matrix_user("alice")
        began = time.monotonic()
        room_id = await alice.join(slot.alias(channel))
        ghosts = {slot.ghost_user_id(f"{slot.connector}_{member.nick}") for member in crowd}

        async def all_in() -> bool:
            missing = ghosts - await alice.joined_members(room_id)
            assert not missing, f"{len(missing)} of {CROWD} ghosts not in the room yet"
            return True

        await eventually(all_in, timeout=400, what="every member's ghost in the portal", interval=1.0)
        in_step = time.monotonic() - began

        # In step afterwards too: one leaves, one comes.
        leaver = crowd.pop()
        await leaver.close("off")
        await eventually(lambda: _not_in(alice, room_id, slot.ghost_user_id(f"{slot.connector}_{leaver.nick}")),
                         timeout=30, what="the leaver's ghost to leave", interval=0.5)
        async with httpx.AsyncClient(timeout=10) as http:
            samples = await scrape(http, bridge.metrics_url)
        requests = sum(value for (name, labels), value in samples.items() if name == "bridgekit_matrix_requests_total")
        rate_limited = sum(value for (name, labels), value in samples.items()
                           if name == "bridgekit_matrix_requests_total" and ("status", "429") in labels)
        waited = sum(value for (name, _labels), value in samples.items()
                     if name == "bridgekit_matrix_request_seconds_sum")
        log.warning("big channel: %d connections in %.1f s; %d ghosts in the portal %.1f s after the join; "
                    "%d Matrix requests (%.1f s waiting on the homeserver in all), %d answered 429",
                    CROWD, connected, CROWD, in_step, requests, waited, rate_limited)
        assert requests >= CROWD  # the counter counts: at least a join per ghost
        assert rate_limited == 0
    finally:
        await asyncio.gather(*(member.close() for member in crowd), return_exceptions=True)


async def _not_in(alice: MatrixTestClient, room_id: str, ghost: str) -> bool:
    return ghost not in await alice.joined_members(room_id)
