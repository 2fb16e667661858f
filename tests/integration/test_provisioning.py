"""The provisioning API end to end: Synapse (with its `openid` resource), a real `bridgekit run`
and chatnet. A tool with the shared secret and a user with an OpenID token link, list and unlink
portals; a user without the room's power level is refused in the words the `link` command uses;
a wrong secret or a forged token gets nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.chatnet import ChatnetServer
from bridgekit.testing.matrix_steps import notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge

pytestmark = pytest.mark.integration

CHAT = "lobby"
SECRET = "provisioning-secret-for-the-tests-0123456789"
API = "/_bridgekit/provision/v1"


@pytest.fixture
async def bridge_api(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge,
) -> AsyncIterator[httpx.AsyncClient]:
    """The bridge (alice-free permissions: this homeserver's users are `user`), provisioning on."""
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user"},
        provisioning={"shared_secret": SECRET, "openid": True},
    )
    async with httpx.AsyncClient(base_url=slot.bridge_url, timeout=30) as http:
        yield http


def as_tool(user_id: str) -> dict[str, Any]:
    """Request arguments of a tool holding the shared secret, acting as ``user_id``."""
    return {"headers": {"Authorization": f"Bearer {SECRET}"}, "params": {"user_id": user_id}}


async def as_user(user: MatrixTestClient) -> dict[str, Any]:
    """Request arguments of ``user`` acting for themselves, with an OpenID token from Synapse."""
    token = await user.request("POST", f"/_matrix/client/v3/user/{quote(user.user_id)}/openid/request_token",
                               json_body={})
    return {"headers": {"Authorization": f"Bearer {token['access_token']}"}}


async def room_with_bot(user: MatrixTestClient, slot: AppserviceSlot) -> str:
    room_id = await user.create_room(name="provisioned", invite=[slot.bot_user_id])
    await user.wait_for_membership(room_id, slot.bot_user_id)
    return room_id


def portal_path(room_id: str) -> str:
    return f"{API}/rooms/{quote(room_id)}/portal"


async def portals(http: httpx.AsyncClient, auth: dict[str, Any]) -> list[dict[str, Any]]:
    response = await http.get(f"{API}/portals", **auth)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


@pytest.mark.parametrize("how", ["shared_secret", "openid"])
async def test_a_room_admin_links_lists_and_unlinks_a_portal(
    how: str, slot: AppserviceSlot, chatnet: ChatnetServer, bridge_api: httpx.AsyncClient,
    make_matrix_user: MakeMatrixUser,
) -> None:
    alice = await make_matrix_user("alice")
    auth = as_tool(alice.user_id) if how == "shared_secret" else await as_user(alice)
    room_id = await room_with_bot(alice, slot)
    assert (await bridge_api.get(f"{API}/whoami", **auth)).json() == {
        "user_id": alice.user_id, "permission_level": "user", "authenticated_by": how,
    }

    linked = await bridge_api.put(portal_path(room_id), json={"network": slot.connector, "chat": CHAT}, **auth)
    assert linked.status_code == 200, linked.text
    assert linked.json()["chat"] == CHAT
    assert await portals(bridge_api, auth) == [{"network": slot.connector, "chat": CHAT, "room_id": room_id}]
    # The room bridges: what alice says reaches the chat (through the relay).
    await alice.send_text(room_id, "hello through a provisioned portal")
    await chatnet.wait_for(CHAT, lambda m: m.text.endswith("hello through a provisioned portal"))

    unlinked = await bridge_api.delete(portal_path(room_id), **auth)
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["message"] == f"This room no longer bridges {CHAT} on {slot.connector}."
    assert await portals(bridge_api, auth) == []
    again = await bridge_api.delete(portal_path(room_id), **auth)
    assert (again.status_code, again.json()["errcode"]) == (404, "M_NOT_FOUND")


async def test_a_member_without_the_rooms_power_is_refused_as_the_link_command_refuses(
    slot: AppserviceSlot, bridge_api: httpx.AsyncClient, make_matrix_user: MakeMatrixUser,
) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await room_with_bot(alice, slot)
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)

    await bob.send_text(room_id, f"!bk link {slot.connector} {CHAT}")
    in_the_room = (await bob.wait_for_event(room_id, notice(slot.bot_user_id, "'link' needs")))["content"]["body"]
    assert "power level 100 in this room (yours is 0)" in in_the_room
    for auth in (as_tool(bob.user_id), await as_user(bob)):
        refused = await bridge_api.put(portal_path(room_id), json={"network": slot.connector, "chat": CHAT}, **auth)
        assert refused.status_code == 403
        assert refused.json() == {"errcode": "M_FORBIDDEN", "error": in_the_room}
        assert await portals(bridge_api, auth) == []  # bob is in the room, but it is no portal

    # Any command, through the API, as bob: the same rules (listing is open to him, relay is not).
    command = await bridge_api.post(f"{API}/rooms/{quote(room_id)}/command", json={"command": "relay off"},
                                    **as_tool(bob.user_id))
    assert command.status_code == 403
    assert command.json()["error"].startswith("'relay' needs power level 100 in this room")


async def test_a_wrong_secret_or_a_forged_token_gets_nothing(
    slot: AppserviceSlot, bridge_api: httpx.AsyncClient, make_matrix_user: MakeMatrixUser,
) -> None:
    alice = await make_matrix_user("alice")
    room_id = await room_with_bot(alice, slot)
    link = {"network": slot.connector, "chat": CHAT}
    attempts = [
        ({}, 401, "M_MISSING_TOKEN"),
        ({"Authorization": f"Bearer {SECRET[:-1]}x"}, 401, "M_UNKNOWN_TOKEN"),
        ({"Authorization": "Bearer forged-openid-token"}, 401, "M_UNKNOWN_TOKEN"),
        ({"Authorization": f"Basic {SECRET}"}, 401, "M_MISSING_TOKEN"),
    ]
    for headers, status, errcode in attempts:
        response = await bridge_api.put(portal_path(room_id), json=link, headers=headers,
                                        params={"user_id": alice.user_id})
        assert (response.status_code, response.json()["errcode"]) == (status, errcode), headers
    # A real token of alice's cannot act for someone else.
    bob = await make_matrix_user("bob")
    as_alice = await as_user(alice)
    other = await bridge_api.get(f"{API}/portals", params={"user_id": bob.user_id}, **as_alice)
    assert (other.status_code, other.json()["errcode"]) == (403, "M_FORBIDDEN")
    # The secret must say whom it acts for; malformed IDs and rooms are 400, never 500.
    assert (await bridge_api.get(f"{API}/portals", headers={"Authorization": f"Bearer {SECRET}"})).status_code == 400
    assert (await bridge_api.get(f"{API}/portals", **as_tool("alice"))).status_code == 400
    bad_room = await bridge_api.put(f"{API}/rooms/not-a-room/portal", json=link, **as_tool(alice.user_id))
    assert (bad_room.status_code, bad_room.json()["errcode"]) == (400, "M_INVALID_PARAM")
    bad_body = await bridge_api.put(portal_path(room_id), content=b"{", **as_tool(alice.user_id))
    assert bad_body.status_code == 400
    assert await portals(bridge_api, as_tool(alice.user_id)) == []


async def test_the_openapi_document_is_served(bridge_api: httpx.AsyncClient) -> None:
    response = await bridge_api.get("/_bridgekit/provision/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths["/v1/rooms/{room_id}/portal"]) == {"put", "delete"}
    assert {"/v1/portals", "/v1/networks", "/v1/logins", "/v1/rooms/{room_id}/command"} <= set(paths)


async def test_webhooks_are_managed_through_the_api_with_the_rooms_rules(
    slot: AppserviceSlot, chatnet: ChatnetServer, run_bridge: RunBridge, make_matrix_user: MakeMatrixUser,
    tmp_path: Path,
) -> None:
    await run_bridge(
        slot, "tests.support.chatnet_connector:ChatnetConnector",
        connector={"server": f"127.0.0.1:{chatnet.port}", "chats": [CHAT], "virtual": False},
        permissions={"localhost": "user"}, provisioning={"shared_secret": SECRET},
        connectors={"webhook": {
            "factory": "bridges.webhook.connector:WebhookConnector", "ghost_prefix": slot.ghost_prefix,
            "database": f"sqlite+aiosqlite:///{tmp_path / 'wh.db'}",
        }},
    )
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await room_with_bot(alice, slot)
    await alice.invite(room_id, bob.user_id)
    await bob.join(room_id)
    command = f"{API}/rooms/{quote(room_id)}/command"
    async with httpx.AsyncClient(base_url=slot.bridge_url, timeout=30) as http:
        created = await http.post(command, json={"command": "webhook create ci"}, **as_tool(alice.user_id))
        assert created.status_code == 200, created.text
        assert created.json()["message"].startswith("Created webhook 'ci'")
        listed = await http.post(command, json={"command": "webhook list"}, **as_tool(bob.user_id))
        assert "Inbound webhooks of this room (1)" in listed.json()["message"]

        await bob.send_text(room_id, "!bk webhook create mine")
        in_the_room = (await bob.wait_for_event(room_id, notice(slot.bot_user_id, "'webhook create' needs")))
        refused = await http.post(command, json={"command": "webhook create mine"}, **as_tool(bob.user_id))
        assert refused.status_code == 403
        assert refused.json() == {"errcode": "M_FORBIDDEN", "error": in_the_room["content"]["body"]}
