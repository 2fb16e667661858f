"""Who is calling the provisioning API: a tool holding the shared secret, acting as the user it
names (``?user_id=``, as mautrix's provisioning API has it), or a Matrix user with an OpenID token
from the configured homeserver, acting for themselves.

Both come as ``Authorization: Bearer <token>``. The shared secret is compared in constant time; any
other token is an OpenID token (when OpenID is on), checked by asking the configured homeserver
(``GET /_matrix/federation/v1/openid/userinfo``), never a server the token or the caller names,
and accepted only for a user of that homeserver. A checked token is remembered briefly, so a
client calling several endpoints costs the homeserver one request.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bridgekit.appservice.errors import MatrixHTTPError
from bridgekit.config import BridgeConfig
from bridgekit.errors import ConfigError
from bridgekit.ids import UserID

log = logging.getLogger(__name__)

SECRET_ENV = "BRIDGEKIT_PROVISIONING_SECRET"  # noqa: S105 (a variable name, not a secret)
SECRET_FILE_ENV = "BRIDGEKIT_PROVISIONING_SECRET_FILE"  # noqa: S105
USERINFO_PATH = "/_matrix/federation/v1/openid/userinfo"
CACHE_LIMIT = 10_000
"""Tokens remembered at most (the oldest is forgotten first)."""
MIN_SECRET_LENGTH = 32


def load_shared_secret(config: BridgeConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """The shared secret: the environment, else the file it names, else the config; None: unset."""
    secret = environ.get(SECRET_ENV, "").strip()
    where = SECRET_ENV
    if not secret and environ.get(SECRET_FILE_ENV, "").strip():
        path = Path(environ[SECRET_FILE_ENV].strip())
        try:
            secret = path.read_text().strip()
        except OSError as error:
            raise ConfigError(f"{SECRET_FILE_ENV}: cannot read {path}: {error.strerror or error}") from None
        where = str(path)
    if not secret:
        return config.provisioning.shared_secret
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the provisioning secret in {where} is shorter than {MIN_SECRET_LENGTH} characters: "
                          "make one with 'bridgekit generate-key'")
    return secret


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: UserID
    """Whom the request acts for."""
    by_secret: bool
    """True for the shared secret (a tool or an admin), False for a user's own OpenID token."""


class ProvisioningAuth:
    def __init__(
        self, *, shared_secret: str | None, openid: bool, homeserver_url: str, server_name: str,
        http: httpx.AsyncClient, cache_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = shared_secret.encode() if shared_secret else None
        self._openid = openid
        self._userinfo_url = homeserver_url.rstrip("/") + USERINFO_PATH
        self._server_name = server_name
        self._http = http
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._checked: OrderedDict[str, tuple[UserID, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """False: provisioning is off, and its routes are not mounted."""
        return self._secret is not None or self._openid

    async def caller(self, authorization: str | None, user_id: str | None) -> Caller:
        """The caller of a request with this ``Authorization`` header and ``?user_id=``;
        raises :class:`MatrixHTTPError` 401 (no or unknown token) or 403 (a user they may not act as)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise MatrixHTTPError(401, "M_MISSING_TOKEN", "Send 'Authorization: Bearer <token>': the provisioning "
                                  "shared secret, or an OpenID token from your homeserver")
        if self._secret is not None and hmac.compare_digest(token.encode(), self._secret):
            if not user_id:
                raise MatrixHTTPError(400, "M_MISSING_PARAM", "With the shared secret, name the user to act as: "
                                      "?user_id=@someone:server")
            return Caller(_user_id(user_id), by_secret=True)
        if not self._openid:
            raise MatrixHTTPError(401, "M_UNKNOWN_TOKEN", "Unknown token")
        owner = await self._openid_user(token)
        if user_id and user_id != owner:
            raise MatrixHTTPError(403, "M_FORBIDDEN", f"An OpenID token acts for its own user ({owner}) only")
        return Caller(owner, by_secret=False)

    async def _openid_user(self, token: str) -> UserID:
        now = self._clock()
        known = self._checked.get(token)
        if known is not None and known[1] > now:
            return known[0]
        try:
            response = await self._http.get(self._userinfo_url, params={"access_token": token})
        except httpx.HTTPError as error:
            log.warning("cannot check an OpenID token with the homeserver: %s", error)
            raise MatrixHTTPError(503, "M_UNKNOWN", "The homeserver could not be asked about this token; try again",
                                  {"Retry-After": "5"}) from None
        body = _json_object(response) if response.status_code == 200 else {}
        sub = body.get("sub")
        if not isinstance(sub, str) or sub.partition(":")[2] != self._server_name or not sub.startswith("@"):
            # The homeserver says no (401), or vouches for someone who is not its own user.
            raise MatrixHTTPError(401, "M_UNKNOWN_TOKEN", "The homeserver does not know this OpenID token")
        owner = UserID(sub)
        self._checked[token] = (owner, now + self._cache_seconds)
        self._checked.move_to_end(token)
        while len(self._checked) > CACHE_LIMIT:
            self._checked.popitem(last=False)
        return owner


def _user_id(value: str) -> UserID:
    localpart, colon, server = value.partition(":")
    if not value.startswith("@") or not colon or len(localpart) < 2 or not server or len(value) > 255:
        raise MatrixHTTPError(400, "M_INVALID_PARAM", "user_id: expected a Matrix user ID such as @alice:example.org")
    return UserID(value)


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


__all__ = ["SECRET_ENV", "SECRET_FILE_ENV", "Caller", "ProvisioningAuth", "load_shared_secret"]
