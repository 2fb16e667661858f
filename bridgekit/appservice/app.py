"""The appservice's FastAPI applications, one per listener: the homeserver-facing routes, the
connectors' routes, health and metrics; errors and access logs on each."""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection, Iterable, Sequence

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from bridgekit.appservice import metrics, routes_health, routes_homeserver, routes_thirdparty
from bridgekit.appservice.access_log import DEFAULT_SECRET_PATH_PREFIXES, AccessLogMiddleware
from bridgekit.appservice.errors import UnexpectedErrorMiddleware, install_error_handlers
from bridgekit.appservice.provision import PREFIX as PROVISION_PREFIX
from bridgekit.appservice.provision import Provisioning, provisioning_app
from bridgekit.appservice.state import AppserviceState
from bridgekit.appservice.transaction_intake import transaction_handler, transaction_id, wrap

APP_PREFIX = "/_matrix/app/v1"
LEGACY_THIRDPARTY_PREFIX = "/_matrix/app/unstable"
LEGACY_PING_PREFIX = "/_matrix/app/unstable/fi.mau.msc2659"


class Resource(enum.Enum):
    """What a listener serves (as hookshot's listeners do): each app gets only its own routes."""

    APPSERVICE = "appservice"
    """The Application Service API (``/_matrix``) and the probes: for the homeserver."""
    CONNECTORS = "connectors"
    """The connectors' own routes (webhooks, IRC links) and the provisioning API: what
    ``public_url`` leads to."""
    METRICS = "metrics"
    """``/metrics``, the detailed ``/health`` and the probes: for Prometheus and the admin."""


class AppserviceApp(FastAPI):
    """A listener's FastAPI app that answers transaction PUTs itself, before FastAPI's stack
    (``transaction_intake.py`` says why), wrapped in the same error and access-log middlewares."""

    transaction_intake: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        intake = self.transaction_intake
        if intake is not None and transaction_id(scope) is not None:
            await intake(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    state: AppserviceState,
    *,
    resources: Collection[Resource],
    access_log: bool = True,
    secret_path_prefixes: Iterable[str] = DEFAULT_SECRET_PATH_PREFIXES,
    connector_routers: Sequence[tuple[str, APIRouter]] = (),
    provisioning: Provisioning | None = None,
) -> FastAPI:
    """The app of one listener, with the routes of ``resources`` only; ``connector_routers`` are
    (connector name, router) pairs, mounted at the root when ``CONNECTORS`` is among them, and so is
    the provisioning API (when it is on)."""
    app = AppserviceApp(
        title="bridgekit appservice",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the homeserver needs no schema; the provisioning API has its own
    )
    app.state.bridgekit = state
    install_error_handlers(app)
    if Resource.APPSERVICE in resources:
        _include_appservice_api(app)
    if Resource.APPSERVICE in resources or Resource.METRICS in resources:
        app.include_router(routes_health.probes_router)
    if Resource.METRICS in resources:
        app.state.metrics_registry = metrics.build_registry(state)
        app.include_router(routes_health.details_router)
        app.include_router(metrics.router)
    for name, connector_router in connector_routers:
        check_connector_routes(name, connector_router)
        if Resource.CONNECTORS in resources:
            app.include_router(connector_router)
    if Resource.CONNECTORS in resources and provisioning is not None and provisioning.auth.enabled:
        app.mount(PROVISION_PREFIX, provisioning_app(provisioning))
    app.add_middleware(UnexpectedErrorMiddleware)
    if access_log:  # added last, so outside: it logs the 503 the middleware above answers
        app.add_middleware(AccessLogMiddleware, secret_path_prefixes=secret_path_prefixes)
    if Resource.APPSERVICE in resources:
        layers: list[type[UnexpectedErrorMiddleware] | functools.partial[AccessLogMiddleware]] = [
            UnexpectedErrorMiddleware]
        if access_log:
            layers.append(functools.partial(AccessLogMiddleware, secret_path_prefixes=secret_path_prefixes))
        app.transaction_intake = wrap(transaction_handler(lambda _scope: app.state.bridgekit), *layers)
    return app


def _include_appservice_api(app: FastAPI) -> None:
    # The transaction routes stay (any other method on them answers 405); create_app's
    # AppserviceApp answers their PUTs before the router.
    app.router.routes.extend(routes_homeserver.transaction_routes(APP_PREFIX))
    app.include_router(routes_homeserver.router, prefix=APP_PREFIX)
    app.include_router(routes_homeserver.ping_router, prefix=APP_PREFIX)
    app.include_router(routes_thirdparty.router, prefix=APP_PREFIX)
    # Legacy paths (spec: a homeserver falls back to them on a non-success status).
    app.router.routes.extend(routes_homeserver.transaction_routes(""))
    app.include_router(routes_homeserver.router)
    app.include_router(routes_thirdparty.router, prefix=LEGACY_THIRDPARTY_PREFIX)
    app.include_router(routes_homeserver.ping_router, prefix=LEGACY_PING_PREFIX)


ALL_RESOURCES = frozenset(Resource)
"""Everything on one app: for in-process tests, never for a listener."""

RESERVED_PATH_PREFIXES = ("/_matrix", "/_bridgekit", "/health", "/metrics")


def check_connector_routes(name: str, router: APIRouter) -> None:
    """Refuse a connector route that would shadow the homeserver's or the operator's paths."""
    for route in router.routes:
        path = str(getattr(route, "path", ""))
        for reserved in RESERVED_PATH_PREFIXES:
            if path == reserved or path.startswith(reserved + "/"):
                raise ValueError(
                    f"connector {name!r} may not add the route {path!r}: paths under {reserved} belong to "
                    "bridgekit; mount the connector's routes elsewhere (for example /{name}/...)"
                )


__all__ = [
    "ALL_RESOURCES", "APP_PREFIX", "RESERVED_PATH_PREFIXES", "AppserviceApp", "Resource", "check_connector_routes",
    "create_app",
]
