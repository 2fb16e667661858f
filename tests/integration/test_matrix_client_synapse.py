"""bridgekit.matrix against a real Synapse: what a bridge does on its homeserver, checked there.

Uses the session's ``main`` appservice slot. Every test makes its own ghosts and rooms (random
suffixes), so the tests share the homeserver without seeing each other's traces.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest

from bridgekit.demo.ports import port_is_free
from bridgekit.errors import MatrixServerError
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.matrix.paths import CLIENT_V3, path
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import SynapseHarness
from tests.support.memory import InMemoryState

pytestmark = pytest.mark.integration


def new_ghost(slot: AppserviceSlot) -> UserID:
    return UserID(slot.ghost_user_id(f"test_{secrets.token_hex(4)}"))


async def messages(client: MatrixClient, room_id: RoomID) -> list[dict[str, object]]:
    body = await client.request_json(
        "GET", path(CLIENT_V3, "rooms", room_id, "messages"), user_id=client.bot_user_id,
        query=[("dir", "f"), ("limit", "100")],
    )
    chunk = body["chunk"]
    assert isinstance(chunk, list)
    return [event for event in chunk if event["type"] == "m.room.message"]


async def test_the_bot_needs_no_registration_but_tolerates_one(client: MatrixClient) -> None:
    await client.bot.ensure_registered()

    assert (await client.bot.whoami()).user_id == client.bot_user_id


async def test_a_ghost_is_registered_once_and_acts_as_itself(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    ghost = client.intent(new_ghost(slot))

    await ghost.ensure_registered()
    await ghost.ensure_registered()
    await ghost.set_displayname("alice (IRC)")

    assert (await ghost.whoami()).user_id == ghost.user_id
    assert (await ghost.get_profile())["displayname"] == "alice (IRC)"


async def test_registering_an_existing_user_again_is_harmless(
    synapse: SynapseHarness, slot: AppserviceSlot,
) -> None:
    ghost_id = new_ghost(slot)
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(2):  # two bridges' lives, each with an empty memory
            fresh = MatrixClient(
                http, homeserver_url=synapse.url, as_token=slot.as_token,
                bot_user_id=UserID(slot.bot_user_id), memory=InMemoryState(),
            )
            await fresh.intent(ghost_id).ensure_registered()


async def test_a_ghost_joins_the_bots_room_and_says_something_it_said_yesterday(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    room_id = await client.bot.create_room(name="portal", preset="private_chat")
    ghost = client.intent(new_ghost(slot))
    yesterday = 1_700_000_000_000

    # The room is invite-only: ensure_joined has the bot invite the ghost, then joins.
    await ghost.ensure_joined(room_id)
    event_id = await ghost.send_text(room_id, "hello from IRC", ts=yesterday, txn_id="irc:1")

    event = await client.bot.get_event(room_id, event_id)
    assert event["sender"] == ghost.user_id
    assert event["origin_server_ts"] == yesterday
    assert event["content"] == {"msgtype": "m.text", "body": "hello from IRC", "m.mentions": {}}


async def test_sending_twice_with_one_idempotency_key_makes_one_event(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    room_id = await client.bot.create_room(name="dedup", preset="public_chat")
    ghost = client.intent(new_ghost(slot))
    await ghost.ensure_joined(room_id)

    first = await ghost.send_text(room_id, "only once", txn_id="irc:libera:#x:msg-77")
    again = await ghost.send_text(room_id, "only once", txn_id="irc:libera:#x:msg-77")
    other = await ghost.send_text(room_id, "only once", txn_id="irc:libera:#x:msg-78")

    assert first == again != other
    sent = [event["event_id"] for event in await messages(client, room_id)]
    assert sent == [first, other]


async def test_state_with_a_massaged_timestamp_reads_back(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    room_id = await client.bot.create_room(name="state")
    content = {"protocol": {"id": "irc"}, "channel": {"id": "#chat"}}

    event_id = await client.bot.send_state(room_id, "m.bridge", "irc://t/#chat", content, ts=1234)

    assert await client.bot.get_state(room_id, "m.bridge", "irc://t/#chat") == content
    assert (await client.bot.get_event(room_id, event_id))["origin_server_ts"] == 1234


async def test_media_uploaded_by_a_ghost_downloads_through_authenticated_media(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    ghost = client.intent(new_ghost(slot))
    await ghost.ensure_registered()
    data = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64)

    uri = await ghost.upload_media(data, "image/png", "avatar.png")
    await ghost.set_avatar_url(uri)

    assert uri.startswith("mxc://")
    assert await client.bot.download_media(uri) == (data, "image/png")
    assert (await ghost.get_profile())["avatar_url"] == uri


async def test_leaving_and_being_kicked_are_forgotten(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    room_id = await client.bot.create_room(name="members", preset="public_chat")
    stays, leaves = client.intent(new_ghost(slot)), client.intent(new_ghost(slot))
    await stays.ensure_joined(room_id)
    await leaves.ensure_joined(room_id)

    await leaves.leave(room_id)
    await client.bot.kick(room_id, stays.user_id, reason="test over")

    members = await client.request_json(
        "GET", path(CLIENT_V3, "rooms", room_id, "joined_members"), user_id=client.bot_user_id,
    )
    assert set(members["joined"]) == {client.bot_user_id}
    await stays.ensure_joined(room_id)  # forgotten, so it really joins again
    members = await client.request_json(
        "GET", path(CLIENT_V3, "rooms", room_id, "joined_members"), user_id=client.bot_user_id,
    )
    assert stays.user_id in members["joined"]


async def test_ping_reports_that_synapse_cannot_reach_a_bridge_that_is_not_listening(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    if not port_is_free(slot.port):
        pytest.skip("something listens on the main slot's port")

    with pytest.raises(MatrixServerError) as caught:
        await client.ping(slot.id)

    assert (caught.value.status, caught.value.errcode) == (502, "M_CONNECTION_FAILED")


async def test_ping_round_trips_through_a_listening_appservice(
    client: MatrixClient, slot: AppserviceSlot,
) -> None:
    pings: list[tuple[str, str | None, dict[str, object]]] = []

    # Synapse may open a connection it never uses (or one whose ping it gave up on): every
    # connection is closed when the test ends, or its socket outlives the event loop.
    connections: set[asyncio.StreamWriter] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # closed unused, by Synapse or by the end of the test
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        pings.append((lines[0], headers.get("authorization"), json.loads(body or b"{}")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    if not port_is_free(slot.port):
        pytest.skip("something listens on the main slot's port")
    server = await asyncio.start_server(answer, "127.0.0.1", slot.port)
    try:
        duration = await client.ping_until_ready(slot.id, deadline_seconds=20, transaction_id="p1")
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()

    assert duration >= 0
    # On a loaded machine the first ping may time out on its way back and be retried: every
    # ping that reached us is the same authenticated request with the caller's transaction ID.
    expected = ("POST /_matrix/app/v1/ping HTTP/1.1", f"Bearer {slot.hs_token}", {"transaction_id": "p1"})
    assert len(pings) >= 1
    assert pings == [expected] * len(pings)
