"""``bridgekit doctor``: checks that config, registration, database driver and homeserver agree.

Each check gives one :class:`CheckResult` (passed, failed with the fix, or skipped), so an admin
sees every problem in one run rather than the first. The checks only read: the config file, the
registration file, the installed database driver and two requests to the homeserver (its
versions, and the appservice ping, which makes the homeserver call the bridge back).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bridgekit.config_loader import (
    AS_TOKEN_ENV,
    HS_TOKEN_ENV,
    LoadedConfig,
    load_tokens,
    read_registration,
)
from bridgekit.errors import ConfigError
from bridgekit.registration import check_registration_matches


@dataclass(frozen=True)
class CheckResult:
    """One line of ``bridgekit doctor``: passed (True), failed (False) or skipped (None)."""

    name: str
    passed: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = {True: "OK", False: "FAIL", None: "SKIP"}[self.passed]
        fix = f" -> fix: {self.fix}" if self.fix and self.passed is False else ""
        return f"{status:<5} {self.name}: {self.detail}{fix}"


def run_checks(
    loaded: LoadedConfig, environ: Mapping[str, str], http_transport: httpx.BaseTransport | None = None
) -> list[CheckResult]:
    """Every check, in the order an admin fixes them: config, registration, driver, homeserver, ping."""
    results = [CheckResult("config", True, f"{loaded.path} is valid"),
               _check_registration(loaded, environ),
               _check_database_driver(loaded.config.database.url)]
    with httpx.Client(transport=http_transport, timeout=5.0) as client:
        reachable = _check_homeserver(client, loaded.config.homeserver.url)
        results += [reachable, _check_ping(client, loaded, environ, reachable.passed)]
    return results



def _check_registration(loaded: LoadedConfig, environ: Mapping[str, str]) -> CheckResult:
    path = loaded.registration_path
    regenerate = f"bridgekit generate-registration -c {loaded.path}"
    if not path.exists():
        if environ.get(AS_TOKEN_ENV) and environ.get(HS_TOKEN_ENV):
            return CheckResult("registration", None, f"{path} is not here (tokens come from "
                               "the environment); compare the homeserver's copy by hand")
        return CheckResult("registration", False, f"{path} not found", regenerate)
    try:
        registration = read_registration(path, missing_hint="")
    except ConfigError as error:
        return CheckResult("registration", False, str(error), f"{regenerate} --new-tokens")
    problems = check_registration_matches(loaded.config, registration)
    problems += [
        f"{variable} differs from {key} in {path.name}"
        for variable, key in ((AS_TOKEN_ENV, "as_token"), (HS_TOKEN_ENV, "hs_token"))
        if environ.get(variable) and environ.get(variable) != registration.get(key)
    ]
    if problems:
        return CheckResult("registration", False, "; ".join(problems),
                           f"{regenerate} (tokens are kept), then reload it on the homeserver")
    return CheckResult("registration", True, f"{path} matches the config")


def _check_database_driver(url: str) -> CheckResult:
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError) as error:
        return CheckResult("database", False, f"database.url is not usable: {error}",
                           "use sqlite+aiosqlite:///bridgekit.db or postgresql+asyncpg://...")
    driver = parsed.get_driver_name()
    if not dialect.is_async:
        return CheckResult("database", False, f"driver {driver} of database.url is not async",
                           "use sqlite+aiosqlite:///... or postgresql+asyncpg://...")
    try:
        dialect.import_dbapi()
    except ImportError:
        package = "'bridgekit[postgres]'" if driver == "asyncpg" else driver
        return CheckResult("database", False, f"driver {driver} is not installed",
                           f"pip install {package}")
    return CheckResult("database", True, f"driver {driver} is installed")


def _check_homeserver(client: httpx.Client, base_url: str) -> CheckResult:
    url = f"{base_url.rstrip('/')}/_matrix/client/versions"
    fix = "start the homeserver, or correct homeserver.url (or BRIDGEKIT_HOMESERVER__URL)"
    try:
        response = client.get(url)
    except httpx.HTTPError as error:
        return CheckResult("homeserver", False, f"cannot reach {url}: {error!r}", fix)
    versions = _json(response).get("versions")
    if response.status_code != 200 or not isinstance(versions, list) or not versions:
        return CheckResult("homeserver", False,
                           f"{url} answered {response.status_code} without a versions list", fix)
    return CheckResult("homeserver", True, f"{base_url} answers (spec up to {versions[-1]})")


def _check_ping(
    client: httpx.Client, loaded: LoadedConfig, environ: Mapping[str, str],
    homeserver_reachable: bool | None,
) -> CheckResult:
    if not homeserver_reachable:
        return CheckResult("ping", None, "the homeserver does not answer")
    try:
        tokens = load_tokens(loaded, environ=environ)
    except ConfigError as error:
        return CheckResult("ping", False, f"no tokens: {error}",
                           f"bridgekit generate-registration -c {loaded.path}")
    appservice = loaded.config.appservice
    url = (f"{loaded.config.homeserver.url.rstrip('/')}/_matrix/client/v1/appservice/"
           f"{quote(appservice.id, safe='')}/ping")
    try:
        response = client.post(
            url, json={"transaction_id": f"bridgekit-doctor-{secrets.token_hex(8)}"},
            headers={"Authorization": f"Bearer {tokens.as_token}"},
        )
    except httpx.HTTPError as error:
        return CheckResult("ping", False, f"cannot reach {url}: {error!r}",
                           "start the homeserver, or correct homeserver.url")
    return _ping_result(response, loaded)


def _ping_result(response: httpx.Response, loaded: LoadedConfig) -> CheckResult:
    body = _json(response)
    errcode = body.get("errcode", "")
    bridge_url = loaded.config.appservice.hs_reachable_url
    install = ("install the registration on the homeserver (Synapse: app_service_config_files) "
               "and restart it; see registration/README.md")
    if response.status_code == 200:
        return CheckResult("ping", True, f"the homeserver reached the bridge at {bridge_url} "
                           f"in {body.get('duration_ms', '?')} ms")
    if errcode in ("M_FORBIDDEN", "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
        detail = f"the homeserver does not know appservice '{loaded.config.appservice.id}' " \
                 f"with this as_token ({errcode})"
        return CheckResult("ping", False, detail, install)
    if errcode in ("M_CONNECTION_FAILED", "M_CONNECTION_TIMEOUT"):
        return CheckResult("ping", False, f"the homeserver cannot reach the bridge at "
                           f"{bridge_url} ({errcode})",
                           f"start it (bridgekit run -c {loaded.path}) and set appservice.address "
                           "to a URL the homeserver can reach")
    if errcode == "M_BAD_STATUS":
        return CheckResult("ping", False, f"the bridge at {bridge_url} answered the homeserver "
                           f"with status {body.get('status')}", "if 403: the homeserver has "
                           "another hs_token; " + install)
    if errcode == "M_URL_NOT_SET":
        return CheckResult("ping", False, "the homeserver's registration has no url", install)
    return CheckResult("ping", False, f"the homeserver answered {response.status_code} "
                       f"{errcode or response.text[:100]!r}",
                       "the appservice ping needs a homeserver implementing Matrix v1.7 or later")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


__all__ = ["CheckResult", "run_checks"]
