"""Matrix-style JSON errors for every failure the appservice answers with.

Unknown routes and methods answer ``M_UNRECOGNIZED`` (404 / 405 with ``Allow``, spec v1.6,
MSC3743): Synapse relies on that to tell "not implemented" from a failure.

Nothing answers 500. What a peer may legally send has an answer of its own (200, or a 4xx that
names the problem). What is left is a failure of the bridge's own (the database unavailable, a
bug): :class:`UnexpectedErrorMiddleware` logs it with its traceback and answers 503 ``M_UNKNOWN``
with ``Retry-After``, because the request was not done and may be tried again: above all a
transaction, which must never be acknowledged unless stored (a 200 would lose its events). It also
keeps the connection open: Starlette's own last-resort handler re-raises after answering, and the
server then drops the keep-alive connection, resetting the homeserver's next request.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridgekit.appservice.access_log import redact_path

log = logging.getLogger(__name__)


class MatrixHTTPError(Exception):
    """Raised by routes to answer with a Matrix error body."""

    def __init__(
        self, status: int, errcode: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.headers = headers


def matrix_error(
    status: int, errcode: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MatrixHTTPError)
    async def _matrix(_request: Request, error: MatrixHTTPError) -> JSONResponse:
        return matrix_error(error.status, error.errcode, error.message, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        if error.status_code == 404:
            return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request", headers)
        if error.status_code == 405:
            return matrix_error(405, "M_UNRECOGNIZED", "Method not allowed here", headers)
        return matrix_error(error.status_code, "M_UNKNOWN", str(error.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return matrix_error(400, "M_INVALID_PARAM", f"{where}: {first.get('msg', 'invalid')}")



RETRY_AFTER_SECONDS = 5


class UnexpectedErrorMiddleware:
    """Answers 503 for an exception no handler took (see the module's docstring); the traceback
    goes to the log, never to the peer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:
                raise  # half an answer is out: only closing the connection can tell the peer
            log.exception("unexpected error while answering %s %s; answered 503", scope.get("method"),
                          redact_path(scope.get("path", "")))
            response = matrix_error(
                503, "M_UNKNOWN", "The bridge could not do this now; try again (the reason is in its log)",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await response(scope, receive, send)


__all__ = ["MatrixHTTPError", "UnexpectedErrorMiddleware", "install_error_handlers", "matrix_error"]
