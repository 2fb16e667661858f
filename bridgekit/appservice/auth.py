"""Authentication of homeserver -> appservice requests (spec: Authorisation, checklist §2).

``Authorization: Bearer <hs_token>``, or the legacy ``access_token`` query parameter; when both are
present both must match. No credentials: 401 ``M_UNAUTHORIZED``; wrong credentials: 403
``M_FORBIDDEN``. Comparison is constant-time, and happens before anything else looks at the
request (so an unauthenticated request can neither burn a txnId nor probe which users exist).
"""

from __future__ import annotations

import hmac

from bridgekit.appservice.errors import MatrixHTTPError


def check_hs_token(expected: bytes, authorization: str | None, query_token: str | None) -> None:
    """Raise :class:`MatrixHTTPError` unless the request carries the right ``hs_token``."""
    presented: list[str] = []
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixHTTPError(
                401, "M_UNAUTHORIZED", "Authorization must be 'Bearer <hs_token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        presented.append(token.strip())
    if query_token is not None:
        presented.append(query_token)
    if not presented:
        raise MatrixHTTPError(
            401, "M_UNAUTHORIZED", "Missing hs_token (Authorization: Bearer <hs_token>)",
            {"WWW-Authenticate": "Bearer"},
        )
    # Check every presented token (no short-circuit) so timing tells nothing about which failed.
    results = [hmac.compare_digest(token.encode(), expected) for token in presented]
    if not all(results):
        raise MatrixHTTPError(403, "M_FORBIDDEN", "The hs_token presented is not this appservice's")


__all__ = ["check_hs_token"]
