"""The provisioning API's routes over the real core (fast): each runs the management room's own
command, so the rules and the refusals are the room's. Authentication and the end-to-end paths
(link, list, unlink on Synapse) are in tests/unit/test_provision_auth.py and
tests/integration/test_provisioning.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bridgekit.appservice.provision import Provisioning, provisioning_app
from bridgekit.appservice.provision_auth import ProvisioningAuth
from bridgekit.core import wiring
from bridgekit.ids import RoomID, UserID
from tests.core.network import NET
from tests.core.test_management import command, open_dm
from tests.core.wiring import ADMIN, ALICE, RITA, Middle

SECRET = "p" * 40


@pytest.fixture
async def api(core: Middle) -> AsyncIterator[httpx.AsyncClient]:
    auth = ProvisioningAuth(shared_secret=SECRET, openid=False, homeserver_url="http://hs.test", server_name="hs.test",
                            http=httpx.AsyncClient())
    provisioning = Provisioning(
        auth=auth, management=core.management, bot_user_id=core.matrix.bot_user_id, networks=(NET,),
        login_flows=lambda net: core.network.login_flows if net == NET else (),
        linked_portals=core.stores.portals.linked_portals, portal_for_room=core.stores.portals.portal_for_room,
        is_joined=wiring.room_member_check(core.matrix), describe_logins=core.sessions.describe_logins,
    )
    app = provisioning_app(provisioning)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge/v1") as http:
        yield http


def as_user(user_id: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {SECRET}"}, "params": {"user_id": user_id}}


async def test_login_through_the_api_is_the_login_command_in_one_call(api: httpx.AsyncClient, core: Middle) -> None:
    networks = (await api.get("/networks", **as_user(ALICE))).json()
    assert networks == [{"id": NET, "login_flows": [
        {"id": "password", "name": "password", "fields": [{"key": "password", "prompt": "Password?", "secret": True}]},
    ]}]
    missing = await api.post(f"/logins/{NET}", json={"answers": {}}, **as_user(ALICE))
    assert (missing.status_code, missing.json()["error"]) == (400, f"{NET}'s login 'password' needs: password.")
    unknown = await api.post("/logins/elsewhere", json={"answers": {}}, **as_user(ALICE))
    assert (unknown.status_code, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")

    relay_only = await api.post(f"/logins/{NET}", json={"answers": {"password": "pw"}}, **as_user(RITA))
    assert relay_only.status_code == 403
    dm = RoomID(core.homeserver.add_room(RITA, members=(core.homeserver.bot_user_id,)))
    assert relay_only.json()["error"] == await command(core, dm, RITA, "!bk login")  # the room's words

    done = await api.post(f"/logins/{NET}", json={"answers": {"password": "pw"}}, **as_user(ALICE))
    assert done.status_code == 200, done.text
    logins = (await api.get("/logins", **as_user(ALICE))).json()["logins"]
    assert len(logins) == 1
    assert NET in logins[0]


async def test_relay_and_any_command_run_as_in_the_room(api: httpx.AsyncClient, core: Middle) -> None:
    portal = await core.portal()
    plain = RoomID(core.homeserver.add_room(ADMIN, members=(core.homeserver.bot_user_id,),
                                            power={core.homeserver.bot_user_id: 100}))
    off = await api.put(f"/rooms/{portal}/relay", json={"enabled": False}, **as_user(ADMIN))
    assert (off.status_code, off.json()["message"]) == (200, await command(core, portal, ADMIN, "!bk relay off"))
    not_portal = await api.put(f"/rooms/{plain}/relay", json={"enabled": True}, **as_user(ADMIN))
    assert (not_portal.status_code, not_portal.json()["error"]) == (
        404, "This room is not a portal: there is nothing to relay here.")

    async def run(line: str, user: UserID = ADMIN) -> httpx.Response:
        return await api.post(f"/rooms/{portal}/command", json={"command": line}, **as_user(user))

    assert (await run("relay on")).json()["message"].startswith("Relay on")
    elsewhere = await run("login", ALICE)
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (400, await command(core, portal, ALICE, "!bk login"))
    dm = await open_dm(core, ALICE)
    asks = await api.post(f"/rooms/{dm}/command", json={"command": "login"}, **as_user(ALICE))
    assert (asks.status_code, asks.json()["errcode"]) == (400, "M_INVALID_PARAM")  # nobody would answer
    assert asks.json()["error"].startswith("'login' asks questions")
    assert (await run("lnik")).json()["errcode"] == "M_UNRECOGNIZED"
    assert (await run('relay "off')).status_code == 400
    refused = await run("relay off", ALICE)
    assert (refused.status_code, refused.json()["error"]) == (403, await command(core, portal, ALICE, "!bk relay off"))


async def test_links_need_the_bot_in_the_room_and_portals_are_listed_by_who_asks(
    api: httpx.AsyncClient, core: Middle,
) -> None:
    hs = core.homeserver
    without_bot = RoomID(hs.add_room(ADMIN, members=(ALICE,)))
    refused = await api.put(f"/rooms/{without_bot}/portal", json={"network": NET, "chat": "chat"}, **as_user(ADMIN))
    assert (refused.status_code, refused.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await core.chat_of(without_bot) is None

    mine = RoomID(hs.add_room(ALICE, members=(hs.bot_user_id,), power={hs.bot_user_id: 100}))
    linked = await api.put(f"/rooms/{mine}/portal", json={"network": NET, "chat": "Chat"}, **as_user(ALICE))
    assert linked.json() == {"network": NET, "chat": "chat", "room_id": mine,
                             "message": "This room is now the portal of chat on net."}
    theirs = await core.portal("other", members=(ADMIN,))
    assert [p["room_id"] for p in (await api.get("/portals", **as_user(ALICE))).json()] == [mine]
    assert [p["room_id"] for p in (await api.get("/portals", **as_user(ADMIN))).json()] == [mine, theirs]
