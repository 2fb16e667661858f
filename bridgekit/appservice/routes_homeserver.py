"""The Application Service API routes the homeserver calls: transactions, user and alias
queries, ping. Mounted under ``/_matrix/app/v1`` and, for homeservers that predate it, at the
legacy unprefixed paths (``/transactions``, ``/users``, ``/rooms``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.routing import Route

from bridgekit import bench_trace
from bridgekit.appservice.auth import check_hs_token
from bridgekit.appservice.errors import MatrixHTTPError
from bridgekit.appservice.state import AppserviceState, State, get_state
from bridgekit.core.transactions import BadTransaction
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
_EMPTY_OBJECT = b"{}"


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


async def put_transaction(request: Request) -> Response:
    """Store the transaction durably, then answer 200 (never before the commit).

    Transactions carry every event, so this is a plain Starlette endpoint (see
    :func:`transaction_routes`): it checks the token itself instead of going through FastAPI's
    dependency and parameter machinery, which cost more per request than the rest of the route.
    """
    arrived_ns = time.monotonic_ns() if bench_trace.enabled else 0
    txn_id: str = request.path_params["txn_id"]
    state = get_state(request)
    _checked(state, request.url.path, request.headers.get("authorization"), request.query_params.get("access_token"))
    body = await read_body(request, state.max_body_bytes)
    try:
        result = await state.inbox.accept(txn_id, body)
    except BadTransaction as error:
        raise MatrixHTTPError(400, error.errcode, error.message) from None
    if bench_trace.enabled:  # after the answer is decided: the stamps cost the event's way nothing
        bench_trace.record_transaction(body, arrived_ns)
    health = state.health
    health.transactions += 1
    health.duplicate_transactions += result.duplicate
    health.rejected_entries += result.rejected
    return Response(_EMPTY_OBJECT, media_type="application/json")


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
    return [Route(f"{prefix}/transactions/{{txn_id:path}}", put_transaction, methods=["PUT"])]


__all__ = ["ping_router", "put_transaction", "read_body", "require_hs_token", "router", "transaction_routes"]
