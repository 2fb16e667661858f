"""The one error tree of bridgekit.

Every error the framework raises derives from :class:`BridgekitError`, and carries a message that
says what went wrong and, where it can, what the user can do about it::

    BridgekitError
    ├── ConfigError                 a config or registration file is invalid (names the key and the fix)
    ├── StoreError                  the database could not do what was asked
    ├── DeliveryFailed              ``ctx.emit(..., wait=True)``: the core gave up posting the event
    ├── DeliveryInterrupted         ``ctx.emit(..., wait=True)``: the bridge stopped first (kept, posted later)
    └── MatrixError                 the homeserver refused or could not be reached
        ├── MatrixConnectionError   network failure or timeout, after the retries ran out
        └── MatrixRequestError      the homeserver answered with an error (status + errcode)
            ├── MatrixForbidden         M_FORBIDDEN, M_EXCLUSIVE, ...: not allowed
            ├── MatrixNotFound          M_NOT_FOUND, M_UNRECOGNIZED
            ├── MatrixRateLimited       M_LIMIT_EXCEEDED (429) after the retries ran out
            ├── MatrixUserInUse         M_USER_IN_USE: registering a user that exists
            ├── MatrixBadRequest        other 4xx: the request itself is wrong (never retried)
            └── MatrixServerError       5xx after the retries ran out
"""

from __future__ import annotations


class BridgekitError(Exception):
    """Base of every error bridgekit raises."""


class ConfigError(BridgekitError):
    """A config or registration file is invalid; the message names the key and the fix."""


class StoreError(BridgekitError):
    """The database could not do what was asked."""


class DeliveryFailed(BridgekitError):
    """A remote event waited for (``ctx.emit(..., wait=True)``) could not be posted on Matrix:
    every attempt failed (the room was told). The last attempt's error is the ``__cause__``."""


class DeliveryInterrupted(BridgekitError):
    """The bridge stopped before a remote event waited for was posted. The event stays stored and
    is posted at the next start; only the answer is lost."""


class MatrixError(BridgekitError):
    """The homeserver refused a request or could not be reached."""


class MatrixConnectionError(MatrixError):
    """The homeserver could not be reached (network error or timeout) after all retries."""


class MatrixRequestError(MatrixError):
    """The homeserver answered with an error status."""

    def __init__(self, status: int, errcode: str, message: str, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.errcode = errcode
        self.message = message
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{status} {errcode}: {message}{where}")


class MatrixForbidden(MatrixRequestError):
    """The homeserver does not allow this (M_FORBIDDEN, M_EXCLUSIVE, M_UNKNOWN_TOKEN, ...)."""


class MatrixNotFound(MatrixRequestError):
    """The thing asked for does not exist (M_NOT_FOUND) or the endpoint is unknown (M_UNRECOGNIZED)."""


class MatrixRateLimited(MatrixRequestError):
    """M_LIMIT_EXCEEDED (429) persisted after the retries ran out."""

    def __init__(
        self, status: int, errcode: str, message: str, *, retry_after_ms: int | None = None,
        method: str = "", path: str = "",
    ) -> None:
        super().__init__(status, errcode, message, method=method, path=path)
        self.retry_after_ms = retry_after_ms


class MatrixUserInUse(MatrixRequestError):
    """M_USER_IN_USE: the user to register already exists (harmless for ghosts)."""


class MatrixBadRequest(MatrixRequestError):
    """Another 4xx: the request itself is wrong; retrying cannot help."""


class MatrixServerError(MatrixRequestError):
    """A 5xx answer persisted after the retries ran out."""


__all__ = [
    "BridgekitError",
    "ConfigError",
    "DeliveryFailed",
    "DeliveryInterrupted",
    "MatrixBadRequest",
    "MatrixConnectionError",
    "MatrixError",
    "MatrixForbidden",
    "MatrixNotFound",
    "MatrixRateLimited",
    "MatrixRequestError",
    "MatrixServerError",
    "MatrixUserInUse",
    "StoreError",
]
