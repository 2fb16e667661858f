"""``PUT /_matrix/app/v1/transactions/{txnId}`` (and the legacy ``/transactions/{txnId}``) as a
bare ASGI handler, in front of the FastAPI app.

Every event the homeserver sends comes through here, one request per transaction, and most
transactions are small (one or a few events) when traffic is light. Through FastAPI each request
paid for its whole stack before the route ran: its telemetry check (environment reads), the
error middlewares, the router's matching of every route, a ``Request`` with its URL parsed and a
``Response`` object: about as much as parsing and storing a one-event transaction (bench/README,
ingest). Here the path is matched once by prefix and the answer is two pre-built ASGI messages.

What the homeserver sees is unchanged: the same statuses and Matrix errors (401/403 for the token,
checked before the body is read; 413 past the body limit; 400 ``M_NOT_JSON``/``M_BAD_JSON``), 200
``{}`` only after the commit, and an unexpected failure answered 503 by the same
:class:`UnexpectedErrorMiddleware`, logged by the same access log. Any other method on these paths
goes through FastAPI as before (405 ``M_UNRECOGNIZED``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from bridgekit import bench_trace
from bridgekit.appservice.auth import check_hs_token
from bridgekit.appservice.errors import MatrixHTTPError, matrix_error
from bridgekit.appservice.state import AppserviceState
from bridgekit.core.transactions import BadTransaction

TRANSACTION_PATHS = ("/_matrix/app/v1/transactions/", "/transactions/")
"""Where transactions arrive: the spec's path and the legacy one (homeservers that predate it)."""

_OK_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"2"), (b"content-type", b"application/json")],
}
_OK_BODY = {"type": "http.response.body", "body": b"{}", "more_body": False}


def transaction_id(scope: Scope) -> str | None:
    """The txnId when ``scope`` is a ``PUT`` of a transaction, else None (FastAPI answers it).

    Matches what the former Starlette route ``{prefix}/transactions/{txn_id:path}`` matched: the
    (percent-decoded) path below the app's root path, any txnId, slashes included."""
    if scope["type"] != "http" or scope["method"] != "PUT":
        return None
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    for prefix in TRANSACTION_PATHS:
        if path.startswith(prefix):
            return path[len(prefix):]
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:  # ASGI header names are lower case
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _query_token(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if b"access_token" not in query:
        return None
    # As Starlette's QueryParams read it: the last value of the key wins.
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    values = [value for key, value in pairs if key == "access_token"]
    return values[-1] if values else None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body, refused with 413 past ``limit`` bytes (checked while it streams in too, so a
    lying or missing Content-Length cannot exhaust memory)."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise MatrixHTTPError(413, "M_TOO_LARGE", f"Body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise MatrixHTTPError(413, "M_TOO_LARGE", f"Body larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def transaction_handler(
    state_of: Callable[[Scope], AppserviceState],
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI handler of a transaction PUT: store durably, then answer 200 (never before the
    commit). ``state_of(scope)`` gives the app's state."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        arrived_ns = time.monotonic_ns() if bench_trace.enabled else 0
        txn_id = transaction_id(scope)
        if txn_id is None:  # only called for a matching scope; a mounted copy sees its own path
            txn_id = scope["path_params"]["txn_id"]
        state = state_of(scope)
        try:
            try:
                check_hs_token(state.hs_token, _header(scope, b"authorization"), _query_token(scope))
            except MatrixHTTPError as error:
                if error.status == 403:  # a token, but not ours: a stale registration (told once)
                    state.token_refusals.refused(scope.get("root_path", "") + scope["path"])
                raise
            body = await _read_body(scope, receive, state.max_body_bytes)
            try:
                result = await state.inbox.accept(txn_id, body)
            except BadTransaction as error:
                raise MatrixHTTPError(400, error.errcode, error.message) from None
        except MatrixHTTPError as error:
            await matrix_error(error.status, error.errcode, error.message, error.headers)(scope, receive, send)
            return
        if bench_trace.enabled:  # after the answer is decided: the stamps cost the event's way nothing
            bench_trace.record_transaction(body, arrived_ns)
        health = state.health
        health.transactions += 1
        health.duplicate_transactions += result.duplicate
        health.rejected_entries += result.rejected
        await send(_OK_START)
        await send(_OK_BODY)

    return handle


def wrap(handler: ASGIApp, *layers: Callable[[ASGIApp], ASGIApp]) -> ASGIApp:
    """``handler`` inside ``layers`` (the first one innermost), as FastAPI stacks middlewares."""
    for layer in layers:
        handler = layer(handler)
    return handler


__all__ = ["TRANSACTION_PATHS", "transaction_handler", "transaction_id", "wrap"]
