"""Who may call the provisioning API (pure): the shared secret, OpenID tokens checked with the
configured homeserver only and for its own users, the short memory of checked tokens, and where
the API is mounted (nowhere when it is off). End to end: tests/integration/test_provisioning.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from bridgekit.appservice.app import Resource, create_app
from bridgekit.appservice.errors import MatrixHTTPError
from bridgekit.appservice.provision import Provisioning
from bridgekit.appservice.provision_auth import SECRET_ENV, SECRET_FILE_ENV, ProvisioningAuth, load_shared_secret
from bridgekit.appservice.state import AppserviceState
from bridgekit.config import BridgeConfig
from bridgekit.errors import ConfigError

SECRET = "s" * 40
HOMESERVER = "http://hs.test:8008"
TOKENS = {"alices-token": "@alice:hs.test", "foreign-token": "@mallory:evil.test", "ported-token": "@bob:hs.test:8448"}


class FakeUserinfo:
    """The homeserver's federation userinfo endpoint, counting the questions it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/_matrix/federation/v1/openid/userinfo"
        assert str(request.url).startswith(HOMESERVER)
        token = request.url.params["access_token"]
        self.asked.append(token)
        if token in TOKENS:
            return httpx.Response(200, json={"sub": TOKENS[token]})
        return httpx.Response(401, json={"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"})


def make_auth(*, secret: str | None = SECRET, openid: bool = True, now: list[float] | None = None,
              server_name: str = "hs.test") -> tuple[ProvisioningAuth, FakeUserinfo]:
    homeserver = FakeUserinfo()
    clock = now if now is not None else [0.0]
    auth = ProvisioningAuth(
        shared_secret=secret, openid=openid, homeserver_url=HOMESERVER, server_name=server_name,
        http=httpx.AsyncClient(transport=httpx.MockTransport(homeserver)), cache_seconds=60,
        clock=lambda: clock[0],
    )
    return auth, homeserver


async def refused(auth: ProvisioningAuth, header: str | None, user_id: str | None = None) -> tuple[int, str]:
    with pytest.raises(MatrixHTTPError) as raised:
        await auth.caller(header, user_id)
    return raised.value.status, raised.value.errcode


async def test_the_shared_secret_acts_as_the_named_user_and_nothing_else_passes_for_it() -> None:
    auth, homeserver = make_auth(openid=False)
    caller = await auth.caller(f"Bearer {SECRET}", "@alice:hs.test")
    assert (caller.user_id, caller.by_secret) == ("@alice:hs.test", True)
    assert await refused(auth, f"Bearer {SECRET}") == (400, "M_MISSING_PARAM")
    assert await refused(auth, f"Bearer {SECRET}", "alice") == (400, "M_INVALID_PARAM")
    assert await refused(auth, f"Bearer {SECRET[:-1]}", "@alice:hs.test") == (401, "M_UNKNOWN_TOKEN")
    assert await refused(auth, f"Basic {SECRET}", "@alice:hs.test") == (401, "M_MISSING_TOKEN")
    assert await refused(auth, None, "@alice:hs.test") == (401, "M_MISSING_TOKEN")
    assert await refused(auth, "Bearer alices-token") == (401, "M_UNKNOWN_TOKEN")  # OpenID is off
    assert homeserver.asked == []


async def test_an_openid_token_acts_for_its_own_user_of_this_homeserver_only() -> None:
    auth, _ = make_auth(secret=None)
    caller = await auth.caller("Bearer alices-token", None)
    assert (caller.user_id, caller.by_secret) == ("@alice:hs.test", False)
    assert (await auth.caller("Bearer alices-token", "@alice:hs.test")).user_id == "@alice:hs.test"
    assert await refused(auth, "Bearer alices-token", "@bob:hs.test") == (403, "M_FORBIDDEN")
    assert await refused(auth, "Bearer forged") == (401, "M_UNKNOWN_TOKEN")
    # The homeserver vouching for a user of another server is not believed.
    assert await refused(auth, "Bearer foreign-token") == (401, "M_UNKNOWN_TOKEN")
    assert await refused(auth, f"Bearer {SECRET}", "@alice:hs.test") == (401, "M_UNKNOWN_TOKEN")  # no secret set


async def test_a_server_name_with_a_port_is_compared_whole() -> None:
    auth, _ = make_auth(secret=None, server_name="hs.test:8448")
    assert (await auth.caller("Bearer ported-token", None)).user_id == "@bob:hs.test:8448"
    assert await refused(auth, "Bearer alices-token") == (401, "M_UNKNOWN_TOKEN")


async def test_a_checked_token_is_remembered_briefly() -> None:
    now = [0.0]
    auth, homeserver = make_auth(secret=None, now=now)
    for _ in range(3):
        await auth.caller("Bearer alices-token", None)
    assert homeserver.asked == ["alices-token"]
    now[0] = 61.0
    await auth.caller("Bearer alices-token", None)
    assert homeserver.asked == ["alices-token", "alices-token"]
    for _ in range(2):  # refusals are not remembered: a token may become valid
        await refused(auth, "Bearer forged")
    assert homeserver.asked.count("forged") == 2


async def test_an_unreachable_homeserver_is_503_not_a_refusal() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    auth = ProvisioningAuth(shared_secret=None, openid=True, homeserver_url=HOMESERVER, server_name="hs.test",
                            http=httpx.AsyncClient(transport=httpx.MockTransport(down)))
    assert await refused(auth, "Bearer alices-token") == (503, "M_UNKNOWN")


def test_the_secret_comes_from_the_environment_or_its_file_first(tmp_path: Path) -> None:
    config = BridgeConfig.model_validate({"provisioning": {"shared_secret": "c" * 32}})
    assert load_shared_secret(config, {}) == "c" * 32
    assert load_shared_secret(config, {SECRET_ENV: "e" * 32}) == "e" * 32
    (tmp_path / "secret").write_text("f" * 32 + "\n")
    assert load_shared_secret(config, {SECRET_FILE_ENV: str(tmp_path / "secret")}) == "f" * 32
    with pytest.raises(ConfigError, match="shorter than 32"):
        load_shared_secret(config, {SECRET_ENV: "short"})
    with pytest.raises(ConfigError, match="cannot read"):
        load_shared_secret(config, {SECRET_FILE_ENV: str(tmp_path / "missing")})
    assert load_shared_secret(BridgeConfig(), {}) is None


@pytest.mark.parametrize(
    ("secret", "openid", "resources", "status"),
    [
        (SECRET, False, {Resource.CONNECTORS}, 200),
        (None, True, {Resource.CONNECTORS}, 200),
        (None, False, {Resource.CONNECTORS}, 404),  # off: not mounted
        (SECRET, True, {Resource.APPSERVICE}, 404),  # the homeserver's listener when public_listen is set
        (SECRET, True, {Resource.METRICS}, 404),
    ],
)
async def test_the_api_is_mounted_with_the_connectors_routes_and_only_when_on(
    secret: str | None, openid: bool, resources: set[Resource], status: int,
) -> None:
    auth, _ = make_auth(secret=secret, openid=openid)
    nothing: Any = None  # the routes below are never called: only mounting is checked
    provisioning = Provisioning(auth=auth, management=nothing, bot_user_id=nothing, networks=(), login_flows=nothing,
                                linked_portals=nothing, portal_for_room=nothing, is_joined=nothing,
                                describe_logins=nothing)
    state = cast(AppserviceState, object())
    app = create_app(state, resources=resources - {Resource.METRICS}, access_log=False, provisioning=provisioning)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge") as http:
        response = await http.get("/_bridgekit/provision/openapi.json")
        assert response.status_code == status
        if status == 404:
            assert response.json()["errcode"] == "M_UNRECOGNIZED"
        else:
            assert "/v1/rooms/{room_id}/portal" in response.json()["paths"]
            unauthenticated = await http.get("/_bridgekit/provision/v1/portals")
            assert (unauthenticated.status_code, unauthenticated.json()["errcode"]) == (401, "M_MISSING_TOKEN")
