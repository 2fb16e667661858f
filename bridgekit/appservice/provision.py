"""The provisioning HTTP API: what the management room does, for tools and web clients.

Mounted at ``/_bridgekit/provision`` beside the connectors' routes (``appservice.public_listen``),
with its OpenAPI document at ``/_bridgekit/provision/openapi.json``; not mounted at all (404) when
provisioning is off. Callers are authenticated by ``provision_auth`` and act as one Matrix user.

Every route that changes something runs the management room's own command for that user
(``ManagementRoom.run``, ``ManagementRoom.login``): the same permission levels, the same room
power rule, the same refusal text. A refusal answers 4xx with ``errcode`` and ``error`` (the text
the room would read); a failure of the bridge's own answers 503. Nothing a caller sends gets a 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel, Field

from bridgekit.appservice.errors import MatrixHTTPError, install_error_handlers
from bridgekit.appservice.provision_auth import Caller, ProvisioningAuth
from bridgekit.commands import BAD_ARGUMENTS, FAILED, NOT_FOUND, REFUSED, UNKNOWN_COMMAND, CommandReply
from bridgekit.connector import LoginFlow
from bridgekit.core.management import ManagementRoom
from bridgekit.core.permissions import PermissionLevel
from bridgekit.ids import RoomID, UserID

PREFIX = "/_bridgekit/provision"

_ROOM_ID = re.compile(r"![\x21-\x7e]{1,254}")
_STATUS = {REFUSED: 403, NOT_FOUND: 404, BAD_ARGUMENTS: 400, UNKNOWN_COMMAND: 404, FAILED: 503}


class PortalRow(Protocol):
    """A portal as the store has it (the store's own row; this layer does not import the store)."""

    @property
    def network(self) -> str: ...
    @property
    def remote_id(self) -> str: ...
    @property
    def room_id(self) -> str | None: ...


@dataclass
class Provisioning:
    """What the routes act on, built by the composition root."""

    auth: ProvisioningAuth
    management: ManagementRoom
    bot_user_id: UserID
    networks: Sequence[str]
    login_flows: Callable[[str], Sequence[LoginFlow]]
    linked_portals: Callable[[], Awaitable[Sequence[PortalRow]]]
    portal_for_room: Callable[[RoomID], Awaitable[PortalRow | None]]
    is_joined: Callable[[RoomID, UserID], Awaitable[bool]]
    """Whether the user is joined to the room, as the homeserver tells the bot."""
    describe_logins: Callable[[UserID], Awaitable[list[str]]]


class ErrorBody(BaseModel):
    errcode: str = Field(examples=["M_FORBIDDEN"])
    error: str = Field(description="What went wrong, in the words the management room would use")


class Done(BaseModel):
    message: str = Field(description="What the management room would have answered")


class Whoami(BaseModel):
    user_id: str
    permission_level: str
    authenticated_by: str = Field(description="shared_secret or openid")


class LoginFieldInfo(BaseModel):
    key: str
    prompt: str
    secret: bool


class LoginFlowInfo(BaseModel):
    id: str
    name: str
    fields: list[LoginFieldInfo]


class NetworkInfo(BaseModel):
    id: str
    login_flows: list[LoginFlowInfo] = Field(description="Empty: no puppet logins on this network")


class PortalInfo(BaseModel):
    network: str
    chat: str
    room_id: str


class Linked(PortalInfo):
    message: str


class LinkRequest(BaseModel):
    network: str = Field(min_length=1, max_length=255)
    chat: str = Field(min_length=1, max_length=1000, description="The chat as a user would type it (#python)")


class RelayRequest(BaseModel):
    enabled: bool


class CommandRequest(BaseModel):
    command: str = Field(min_length=1, max_length=10_000, examples=["webhook list"],
                         description="A command line as sent in the room, without the prefix")


class LoginRequest(BaseModel):
    flow: str | None = Field(default=None, max_length=255, description="Default: the network's first flow")
    answers: dict[str, str] = Field(description="The flow's fields, by key")


class Logins(BaseModel):
    logins: list[str]


def _provisioning(request: Request) -> Provisioning:
    provisioning: Provisioning = request.app.state.provisioning
    return provisioning


async def _caller(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <shared secret or OpenID token>")] = None,
    user_id: Annotated[str | None, Query(description="With the shared secret: the user to act as")] = None,
) -> Caller:
    return await _provisioning(request).auth.caller(authorization, user_id)


Services = Annotated[Provisioning, Depends(_provisioning)]
Who = Annotated[Caller, Depends(_caller)]
_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 503)
}
router = APIRouter(prefix="/v1", responses=_ERRORS)


def _answer(reply: CommandReply) -> Done:
    if reply.errcode is not None:
        raise MatrixHTTPError(_STATUS.get(reply.errcode, 400), reply.errcode, reply.text)
    return Done(message=reply.text)


def _room(room_id: str) -> RoomID:
    # Room version 12 IDs have no server part (!hash), so only the sigil and the characters are checked.
    if not _ROOM_ID.fullmatch(room_id):
        raise MatrixHTTPError(400, "M_INVALID_PARAM", "room_id: expected a Matrix room ID such as !abc:example.org")
    return RoomID(room_id)


@router.get("/whoami", summary="Whom the request acts for, and their bridge permission level")
async def whoami(services: Services, caller: Who) -> Whoami:
    level = services.management.level_for(caller.user_id)
    return Whoami(user_id=caller.user_id, permission_level=level.label,
                  authenticated_by="shared_secret" if caller.by_secret else "openid")


@router.get("/networks", summary="The networks this bridge bridges, and their login flows")
async def networks(services: Services, caller: Who) -> list[NetworkInfo]:
    return [NetworkInfo(id=name, login_flows=[_flow(flow) for flow in services.login_flows(name)])
            for name in services.networks]


@router.get("/portals", summary="Portals: every one for bridge admins, else those of rooms the user is in")
async def portals(services: Services, caller: Who) -> list[PortalInfo]:
    everything = services.management.level_for(caller.user_id) >= PermissionLevel.ADMIN
    found = []
    for portal in await services.linked_portals():
        room = RoomID(portal.room_id or "")
        if everything or await services.is_joined(room, caller.user_id):
            found.append(PortalInfo(network=portal.network, chat=portal.remote_id, room_id=room))
    return found


@router.put("/rooms/{room_id}/portal", summary="Link the room to a chat (the 'link' command)")
async def link(services: Services, caller: Who, room_id: str, body: LinkRequest) -> Linked:
    room = _room(room_id)
    # In the room, the bot is there to read the command; here it must be asked. A bridge admin needs
    # no power in the room, so without this they could make a portal the bot cannot post into.
    if not await services.is_joined(room, services.bot_user_id):
        raise MatrixHTTPError(400, BAD_ARGUMENTS, "The bridge bot is not in this room: invite it, then link the room.")
    done = _answer(await services.management.run(caller.user_id, room, "link", [body.network, body.chat]))
    portal = await services.portal_for_room(room)
    chat = portal.remote_id if portal is not None else body.chat
    return Linked(network=body.network, chat=chat, room_id=room, message=done.message)


@router.delete("/rooms/{room_id}/portal", summary="Stop bridging the room (the 'unlink' command)")
async def unlink(services: Services, caller: Who, room_id: str) -> Done:
    return _answer(await services.management.run(caller.user_id, _room(room_id), "unlink", []))


@router.put("/rooms/{room_id}/relay", summary="Turn the portal's relay on or off (the 'relay' command)")
async def relay(services: Services, caller: Who, room_id: str, body: RelayRequest) -> Done:
    switch = "on" if body.enabled else "off"
    return _answer(await services.management.run(caller.user_id, _room(room_id), "relay", [switch]))


@router.post("/rooms/{room_id}/command",
             summary="Run any command in the room, as if the user sent it there (e.g. 'webhook create ci')")
async def command(services: Services, caller: Who, room_id: str, body: CommandRequest) -> Done:
    management = services.management
    context = management.context_for(caller.user_id, _room(room_id))
    return _answer(await management.registry.run_once(body.command, context))


@router.get("/logins", summary="The user's puppet logins and how they are doing")
async def logins(services: Services, caller: Who) -> Logins:
    return Logins(logins=await services.describe_logins(caller.user_id))


@router.post("/logins/{network}", summary="Log in to a network with every answer of a flow at once")
async def login(services: Services, caller: Who, network: str, body: LoginRequest) -> Done:
    return _answer(await services.management.login(caller.user_id, network, body.flow, body.answers))


def _flow(flow: LoginFlow) -> LoginFlowInfo:
    return LoginFlowInfo(id=flow.id, name=flow.name, fields=[
        LoginFieldInfo(key=field.key, prompt=field.prompt, secret=field.secret) for field in flow.fields
    ])


def provisioning_app(provisioning: Provisioning) -> FastAPI:
    """The API as an app of its own (its own OpenAPI document), mounted at :data:`PREFIX`."""
    app = FastAPI(
        title="bridgekit provisioning API", version="1", docs_url=None, redoc_url=None,
        openapi_url="/openapi.json",
        description="Authenticate with 'Authorization: Bearer <token>': the shared secret (acting as ?user_id=) "
                    "or a Matrix OpenID token of this homeserver's user (acting for themselves).",
    )
    app.state.provisioning = provisioning
    install_error_handlers(app)
    app.include_router(router)
    return app


__all__ = ["PREFIX", "Provisioning", "provisioning_app", "router"]
