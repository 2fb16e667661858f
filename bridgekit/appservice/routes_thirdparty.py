"""Third-party network lookups (``/thirdparty/*``), answered by connectors that provide them.

No connector with third-party lookups at all: 404 ``M_UNRECOGNIZED`` (the appservice does not
implement them). Unknown protocol or no match: 404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bridgekit.appservice.errors import MatrixHTTPError
from bridgekit.appservice.routes_homeserver import Authenticated
from bridgekit.appservice.state import AppserviceState, State
from bridgekit.ids import RoomAlias, UserID

router = APIRouter(prefix="/thirdparty", dependencies=[Authenticated])


def _lookup_fields(request: Request) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items() if key != "access_token"}


def _require_support(state: AppserviceState) -> None:
    if not state.bridge.thirdparty_handlers:
        raise MatrixHTTPError(404, "M_UNRECOGNIZED", "This bridge provides no third-party lookups")


def _found(results: list[dict[str, Any]] | None, what: str) -> list[dict[str, Any]]:
    if not results:
        raise MatrixHTTPError(404, "M_NOT_FOUND", f"No {what} found")
    return results


@router.get("/protocol/{protocol}")
async def get_protocol(protocol: str, state: State) -> dict[str, Any]:
    _require_support(state)
    handler = state.bridge.thirdparty_handler(protocol)
    metadata = await handler.thirdparty_protocol(protocol) if handler is not None else None
    if metadata is None:
        raise MatrixHTTPError(404, "M_NOT_FOUND", f"No protocol '{protocol}' here")
    return metadata


@router.get("/user/{protocol}")
async def lookup_users(protocol: str, request: Request, state: State) -> list[dict[str, Any]]:
    _require_support(state)
    return _found(await state.bridge.thirdparty_lookup("user", protocol, _lookup_fields(request)), "users")


@router.get("/location/{protocol}")
async def lookup_locations(protocol: str, request: Request, state: State) -> list[dict[str, Any]]:
    _require_support(state)
    results = await state.bridge.thirdparty_lookup("location", protocol, _lookup_fields(request))
    return _found(results, "locations")


@router.get("/user")
async def reverse_lookup_user(request: Request, state: State) -> list[dict[str, Any]]:
    _require_support(state)
    user_id = request.query_params.get("userid")
    if not user_id:
        raise MatrixHTTPError(400, "M_MISSING_PARAM", "Query parameter 'userid' is required")
    return _found(await state.bridge.thirdparty_user_by_id(UserID(user_id)), "users")


@router.get("/location")
async def reverse_lookup_location(request: Request, state: State) -> list[dict[str, Any]]:
    _require_support(state)
    alias = request.query_params.get("alias")
    if not alias:
        raise MatrixHTTPError(400, "M_MISSING_PARAM", "Query parameter 'alias' is required")
    return _found(await state.bridge.thirdparty_location_by_alias(RoomAlias(alias)), "locations")


__all__ = ["router"]
