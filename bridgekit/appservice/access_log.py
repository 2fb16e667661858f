"""An access log that never records a secret.

uvicorn's own access log prints the raw path and query string, which would put the legacy
``access_token`` query parameter (the hs_token) and webhook secrets embedded in paths into log
files. This middleware replaces it: query values of secret-bearing parameters and the path segment
after a secret-bearing prefix are written as ``<redacted>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("bridgekit.access")

REDACTED = "<redacted>"
SECRET_QUERY_PARAMETERS = frozenset({"access_token", "token", "secret", "signature", "sig"})
DEFAULT_SECRET_PATH_PREFIXES = ("/webhook/",)


def redact_path(path: str, secret_path_prefixes: Iterable[str] = DEFAULT_SECRET_PATH_PREFIXES) -> str:
    """Replace the segment that follows a secret-bearing prefix (``/webhook/<secret>/x``)."""
    for prefix in secret_path_prefixes:
        if path.startswith(prefix) and len(path) > len(prefix):
            _secret, slash, rest = path[len(prefix):].partition("/")
            return f"{prefix}{REDACTED}{slash}{rest}"
    return path


def redact_query(query: str) -> str:
    if not query:
        return ""
    pairs = [
        (key, REDACTED if key.lower() in SECRET_QUERY_PARAMETERS else value)
        for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return urlencode(pairs, safe="<>")


class AccessLogMiddleware:
    """Logs ``METHOD path status duration`` for each HTTP request, with secrets redacted."""

    def __init__(
        self, app: ASGIApp, secret_path_prefixes: Iterable[str] = DEFAULT_SECRET_PATH_PREFIXES
    ) -> None:
        self.app = app
        self.secret_path_prefixes = tuple(secret_path_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = redact_path(scope.get("path", ""), self.secret_path_prefixes)
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s%s" %d %.1fms', client[0], scope.get("method", "-"), path,
                f"?{query}" if query else "", status, (time.perf_counter() - started) * 1000,
            )


__all__ = ["AccessLogMiddleware", "redact_path", "redact_query"]
