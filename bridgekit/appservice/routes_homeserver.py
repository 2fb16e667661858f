"""The Application Service API routes the homeserver calls: transactions, user and alias
queries, ping. Mounted under ``/_matrix/app/v1`` and, for homeservers that predate it, at the
legacy unprefixed paths (``/transactions``, ``/users``, ``/rooms``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.routing import Route

from bridgekit.appservice.auth import check_hs_token
from bridgekit.appservice.errors import MatrixHTTPError
from bridgekit.appservice.state import AppserviceState, State, get_state_of_app
from bridgekit.appservice.transaction_intake import transaction_handler
from bridgekit.ids import RoomAlias, UserID

log = logging.getLogger(__name__)


async def require_hs_token(
    request: Request,
    state: State,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[str | None, Query()] = None,
) -> None:
    _checked(state, request.url.path, authorization, access_token)


def _checked(state: AppserviceState, path: str, authorization: str | None, access_token: str | None) -> None:
    try:
        check_hs_token(state.hs_token, authorization, access_token)
    except MatrixHTTPError as error:
        if error.status == 403:  # a token, but not ours: a stale registration (told once, not per request)
            state.token_refusals.refused(path)
        raise


Authenticated = Depends(require_hs_token)

router = APIRouter(dependencies=[Authenticated])
ping_router = APIRouter(dependencies=[Authenticated])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (checked while streaming too, so
    a lying or missing Content-Length cannot exhaust memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise MatrixHTTPError(413, "M_TOO_LARGE", f"Body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MatrixHTTPError(413, "M_TOO_LARGE", f"Body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/users/{user_id:path}")
async def query_user(user_id: str, state: State) -> dict[str, Any]:
    if await state.bridge.query_user(UserID(user_id)):
        return {}
    raise MatrixHTTPError(404, "M_NOT_FOUND", f"{user_id} is not a user of this bridge")


@router.get("/rooms/{room_alias:path}")
async def query_room_alias(room_alias: str, state: State) -> dict[str, Any]:
    if await state.bridge.query_alias(RoomAlias(room_alias)):
        return {}
    raise MatrixHTTPError(404, "M_NOT_FOUND", f"{room_alias} is not a room of this bridge")


@ping_router.post("/ping")
async def ping(request: Request, state: State) -> dict[str, Any]:
    """The homeserver's side of ``POST /_matrix/client/v1/appservice/{id}/ping``."""
    body = await read_body(request, 64 * 1024)
    if body.strip():
        try:
            document = json.loads(body)
        except ValueError:
            raise MatrixHTTPError(400, "M_NOT_JSON", "ping body is not valid JSON") from None
        except RecursionError:  # nested past the decoder's limit: no ping body is
            raise MatrixHTTPError(400, "M_BAD_JSON", "ping body must be a JSON object") from None
        if not isinstance(document, dict):
            raise MatrixHTTPError(400, "M_BAD_JSON", "ping body must be a JSON object")
        transaction_id = document.get("transaction_id")
        if transaction_id is not None and not isinstance(transaction_id, str):
            raise MatrixHTTPError(400, "M_BAD_JSON", "'transaction_id' must be a string")
    state.health.last_ping_from_homeserver = time.time()
    return {}


def transaction_routes(prefix: str) -> list[Route]:
    """The transaction route, for apps that do not answer it first (``AppserviceApp`` does): a
    bare ASGI handler (``transaction_intake.py``); any other method on it answers 405."""
    handler = transaction_handler(lambda scope: get_state_of_app(scope["app"]))
    return [Route(f"{prefix}/transactions/{{txn_id:path}}", handler, methods=["PUT"])]


__all__ = ["ping_router", "read_body", "require_hs_token", "router", "transaction_routes"]
