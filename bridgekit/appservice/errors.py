"""Matrix-style JSON errors for every failure the appservice answers with.

Unknown routes and methods answer ``M_UNRECOGNIZED`` (404 / 405 with ``Allow``, spec v1.6,
MSC3743): Synapse relies on that to tell "not implemented" from a failure.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        # The homeserver retries a failed transaction with the same txnId, so a 500 here loses
        # nothing; the traceback goes to the log, not to the homeserver.
        log.exception("unexpected error while answering a request")
        return matrix_error(500, "M_UNKNOWN", "Internal error; see the bridge's log")


__all__ = ["MatrixHTTPError", "install_error_handlers", "matrix_error"]
