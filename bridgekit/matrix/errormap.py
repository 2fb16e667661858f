"""Turn a homeserver's error answer into the typed error of :mod:`bridgekit.errors`.

The errcode decides where there is one; the status decides otherwise, so a proxy's HTML error
page or an empty body still becomes the right kind of error.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from bridgekit.errors import (
    MatrixBadRequest,
    MatrixForbidden,
    MatrixNotFound,
    MatrixRateLimited,
    MatrixRequestError,
    MatrixServerError,
    MatrixUserInUse,
)
from bridgekit.matrix.retry import RetryPolicy, rate_limit_delay

_BY_ERRCODE: Mapping[str, type[MatrixRequestError]] = {
    "M_FORBIDDEN": MatrixForbidden,
    "M_EXCLUSIVE": MatrixForbidden,
    "M_UNKNOWN_TOKEN": MatrixForbidden,
    "M_MISSING_TOKEN": MatrixForbidden,
    "M_NOT_FOUND": MatrixNotFound,
    "M_UNRECOGNIZED": MatrixNotFound,
    "M_LIMIT_EXCEEDED": MatrixRateLimited,
    "M_USER_IN_USE": MatrixUserInUse,
}

_BY_STATUS: Mapping[int, type[MatrixRequestError]] = {
    401: MatrixForbidden,
    403: MatrixForbidden,
    404: MatrixNotFound,
    429: MatrixRateLimited,
}

_MAX_MESSAGE = 200

_UNCAPPED = RetryPolicy(rate_limit_cap=float("inf"))


def json_body(response: httpx.Response) -> Mapping[str, object] | None:
    """The body as a JSON object, or None when it is empty, not JSON or not an object."""
    try:
        data: object = response.json()
    except ValueError:
        return None
    return data if isinstance(data, Mapping) else None


def error_from_response(
    response: httpx.Response, *, method: str, path: str,
) -> MatrixRequestError:
    """The typed error for an error answer (status >= 400)."""
    body = json_body(response)
    errcode = _string(body, "errcode") or "M_UNKNOWN"
    message = _string(body, "error") or _text_excerpt(response)
    # A 5xx is the server's fault whatever errcode it carries (ping's 502 M_BAD_STATUS, say).
    if response.status_code >= 500:
        return MatrixServerError(response.status_code, errcode, message, method=method, path=path)
    kind = _BY_ERRCODE.get(errcode) or _BY_STATUS.get(response.status_code, MatrixBadRequest)
    if kind is MatrixRateLimited:
        return MatrixRateLimited(
            response.status_code, errcode, message, method=method, path=path,
            retry_after_ms=_retry_after_ms(response, body),
        )
    return kind(response.status_code, errcode, message, method=method, path=path)


def _retry_after_ms(response: httpx.Response, body: Mapping[str, object] | None) -> int | None:
    # What the server asked for, uncapped (the cap is the client's policy, not the server's word).
    seconds = rate_limit_delay(_UNCAPPED, response, body)
    return round(seconds * 1000) if seconds is not None else None


def _string(body: Mapping[str, object] | None, key: str) -> str | None:
    value = body.get(key) if body is not None else None
    return value if isinstance(value, str) and value else None


def _text_excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    if not text:
        return response.reason_phrase or "no error message"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


__all__ = ["error_from_response", "json_body"]
