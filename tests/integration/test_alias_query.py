"""The alias query asked again for a portal that exists (issue 10, item 7), on the real Synapse and
a real `bridgekit run` with the example connector (memonet).

It once answered 500 (the bridge pointed the alias at the room again and Synapse answered 409), and
the exception closed the keep-alive connection, so the homeserver's next request on it was reset.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from urllib.parse import quote

import pytest

from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

CHAT = f"lobby{secrets.token_hex(3)}"  # its alias must be new to Synapse (the slot outlives the test)


async def exchange(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, path: str, token: str) -> bytes:
    """One GET on an open HTTP/1.1 connection, as the homeserver sends it; the status line back."""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), 10)
    return head.split(b"\r\n", 1)[0]


async def test_asking_again_for_an_existing_portal_alias_answers_200_at_once_on_the_same_connection(
    slot: AppserviceSlot, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser
) -> None:
    bridge = await run_bridge(
        slot, "bridgekit.testing.memonet:MemonetConnector",
        connector={"control_token": secrets.token_urlsafe(16), "chats": [CHAT]},
    )
    alice = await make_matrix_user("alice")
    room_id = await alice.join(slot.alias(CHAT))  # Synapse's own query made the portal
    await alice.wait_for_membership(room_id, alice.user_id)

    path = f"/_matrix/app/v1/rooms/{quote(slot.alias(CHAT), safe='')}"
    reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
    try:
        began = time.monotonic()
        assert await exchange(writer, reader, path, slot.hs_token) == b"HTTP/1.1 200 OK"
        assert time.monotonic() - began < 5  # no room made again, no retry loop
        # The connection stays usable: the homeserver's next request on it is answered.
        assert await exchange(writer, reader, path, slot.hs_token) == b"HTTP/1.1 200 OK"
        assert await exchange(writer, reader, "/_matrix/app/v1/users/%40nobody%3Ax", slot.hs_token) == (
            b"HTTP/1.1 404 Not Found"
        )
    finally:
        writer.close()
    alias = quote(slot.alias(CHAT), safe="")
    directory = await alice.request("GET", f"/_matrix/client/v3/directory/room/{alias}")
    assert directory["room_id"] == room_id  # still the one portal
