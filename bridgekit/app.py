"""The composition root: the one place that builds the bridge, runs it, and takes it apart.

Built in this order, under one ``contextlib.AsyncExitStack``: each resource's close is pushed
as it is made, so shutdown runs in the reverse order, and a failure part-way closes exactly what
was opened.

1. the listeners' sockets (every address first: one in use stops the bridge before it touches
   the database, as a second copy of a running bridge must never write to it), and the
   connectors' factories found and their config sections validated;
2. the store: the database, opened and migrated (nothing else is loaded: 10,000 portals cost
   nothing here);
3. the Matrix client (and the HTTP client for remote pictures);
4. the core: sessions, remote -> Matrix delivery, Matrix -> remote routing, the management
   room, the bridge and its inbox (which queues the events the previous run acknowledged but did
   not handle; they wait for step 7);
5. the connectors, each built with its context (``factory(ctx)``) into the table the core was
   given, their own tables migrated and their commands registered;
6. the HTTP apps, on one listener per audience (``appservice/listeners.py``), with the
   connectors' routes: transactions are accepted from here on;
7. running: the homeserver pinged in the background (``/appservice/{id}/ping``: Synapse then
   redelivers what it held back at once), the connectors started (they connect to their networks,
   paced by themselves), their jobs run, puppets reconnected, and only then events handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridgekit._lean_imports import drop_import_leftovers
from bridgekit.appservice.listeners import Listener, bind, plan_listeners
from bridgekit.appservice.provision import Provisioning
from bridgekit.appservice.provision_auth import ProvisioningAuth, load_shared_secret
from bridgekit.appservice.server import Listeners, listener_app
from bridgekit.appservice.state import AppserviceState, Health
from bridgekit.config import AppserviceTokens, BridgeConfig
from bridgekit.config_loader import LoadedConfig
from bridgekit.config_paths import describe_database, resolve_config_paths
from bridgekit.connector import BridgeContext, CommandProvider, HttpRouteProvider, NetworkConnector, SessionState
from bridgekit.core import wiring
from bridgekit.core.bridge import Bridge, OwnUsers
from bridgekit.core.connector_kv import ConnectorKeyValue
from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.core.connectors import ConnectorTable, PlannedConnector, build_connector, plan_connectors
from bridgekit.core.double_puppet import double_puppet_status
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.inbox import Inbox
from bridgekit.core.jobs import ConnectorJobs, JobRunner
from bridgekit.core.link_approval import LinkApprovals
from bridgekit.core.management import ManagementRoom, ManagementServices
from bridgekit.core.matrix_to_remote import MatrixToRemote
from bridgekit.core.remote_delivery import RemoteDelivery
from bridgekit.core.routing import DEFAULT_RELAY_TEMPLATE
from bridgekit.core.sessions import Sessions
from bridgekit.core.signing_keys import SigningKeys
from bridgekit.errors import BridgekitError, ConfigError
from bridgekit.guarded_http import GuardedHTTP, new_http_client
from bridgekit.ids import ContentURI, RoomID, UserID
from bridgekit.log_format import formatter
from bridgekit.matrix import MatrixClient
from bridgekit.media import MatrixMedia
from bridgekit.store import Database, KeyValueStore, MatrixStateStore
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.inbox import InboxStore
from bridgekit.store.jobs import JobStore
from bridgekit.store.sessions import LoginStore
from bridgekit.store.users import UserStore
from bridgekit.telemetry import BridgeMetrics

log = logging.getLogger(__name__)

PING_DEADLINE_SECONDS = 300.0
RESTORE_WAIT_SECONDS = 15.0
"""How long start-up waits for puppet logins to reconnect before handling events."""


def configure_logging(config: BridgeConfig) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(config.logging.format))
    # force: the CLI configured a plain handler before the config was read; this one replaces it.
    logging.basicConfig(level=config.logging.level, handlers=[handler], force=True)
    # httpx logs every request URL at INFO; ours go through the Matrix client's own logging.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_bridge(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code: 2 for a problem in the config
    (a listener's address in use, a database at the old place), 1 for another that stops the start."""
    configure_logging(loaded.config)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        try:
            return runner.run(serve(resolve_config_paths(loaded), tokens))
        except BridgekitError as error:
            # A problem the admin can fix (the database is unreachable, a connector is missing):
            # say it in one line, no traceback.
            log.error("bridgekit cannot start: %s", error)
            return 2 if isinstance(error, ConfigError) else 1


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is a dependency; this only guards odd platforms): its event
    loop and uvicorn's httptools parser roughly halve the CPU each transaction costs."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class _Core:
    """The core's parts, built in dependency order (step 4), with the empty connector table they
    serve (filled in step 5)."""

    def __init__(
        self, stack: contextlib.AsyncExitStack, config: BridgeConfig, database: Database, http: httpx.AsyncClient,
        matrix: MatrixClient, memory: MatrixStateStore, metrics: BridgeMetrics,
    ) -> None:
        server_name = config.homeserver.server_name
        enabled = config.enabled_connectors()
        self.connectors = ConnectorTable()
        self.health = Health()
        self.cipher = wiring.credential_cipher(config)
        self.sessions = Sessions(
            self.connectors, LoginStore(database), self.cipher, self._notify_owner,
            virtual_idle_seconds={name: section.virtual_idle_minutes * 60 for name, section in enabled.items()},
        )
        stack.push_async_callback(self.sessions.stop)
        double_puppet = wiring.double_puppet_client(config, http, memory, metrics)
        stores = BridgeStores(database)
        self._fetch_http: httpx.AsyncClient | None = None  # made on the first fetch
        stack.push_async_callback(self._close_fetch_http)
        in_flight = SendsInFlight()
        self.remote = RemoteDelivery(
            stores, matrix, server_name=server_name,
            ghost_prefixes={name: section.ghost_prefix_for(name) for name, section in enabled.items()},
            max_attempts=config.inbox.max_attempts,
            owner_of=self.sessions.owner_of, double_puppet=double_puppet, report_session=self.sessions.report,
            in_flight=in_flight, is_puppet_owner=self.sessions.has_login,
            # Remote users' pictures come from URLs the network gives: fetched through the SSRF guard.
            fetcher=GuardedHTTP(self.fetch_http, ()),
            on_portal_change=wiring.portal_listener(self.connectors),
            metrics=metrics,
        )
        permissions = wiring.permissions(config)
        router = MatrixToRemote(
            self.connectors, stores, matrix, permissions, self.sessions, in_flight,
            relay_templates={name: str(section.settings().get("relay_template", DEFAULT_RELAY_TEMPLATE))
                             for name, section in enabled.items()},
            metrics=metrics,
        )
        self.portals, self.login_flows = stores.portals, wiring.login_flows(self.connectors)
        self.status = _StatusReport(self.health, self.remote, self.connectors, self.sessions)

        async def notify(room_id: RoomID, text: str, key: str, mention: UserID) -> None:
            await matrix.bot.send_text(room_id, text, msgtype="m.notice", mentions=[mention], txn_id=key)

        self.link_approvals = LinkApprovals(self.connectors, self.remote.link_portal, notify)
        stack.push_async_callback(self.link_approvals.stop)
        self.management = ManagementRoom(
            matrix, UserStore(database), permissions,
            ManagementServices(
                status=self.status, link_portal=wiring.command_linker(self.connectors, self.remote),
                networks=tuple(enabled), set_relay=wiring.relay_switch(stores.portals),
                follow_upgrade=self.remote.follow_upgrade, unlink_portal=self.remote.unlink_portal,
                sessions=self.sessions, login_flows=self.login_flows,
                double_puppet_status=lambda user_id: double_puppet_status(double_puppet, user_id, server_name),
                ask_link_approval=self.link_approvals.ask,
            ),
            room_admin_level=config.room_admin_level,
        )

        async def register_user(user_id: UserID) -> None:
            await matrix.intent(user_id).ensure_registered()

        own_users = OwnUsers(
            UserID(config.bot_user_id), [section.ghost_prefix_for(name) for name, section in enabled.items()],
            server_name,
        )
        self.bridge = Bridge(
            self.connectors.in_order, own_users, register_user, memory, self.management, router, notify,
            alias_prefixes={name: section.alias_prefix_for(name) for name, section in enabled.items()},
            make_alias_portal=self.remote.create_alias_portal,
        )
        self.inbox = Inbox(
            InboxStore(database), self.bridge.handle,
            max_attempts=config.inbox.max_attempts,
            retention_ms=int(config.inbox.retention_hours * 3600 * 1000),
            prune_interval=config.inbox.prune_interval_seconds,
            max_queued=config.inbox.max_queued_events,
            on_given_up=self.bridge.report_given_up,
            ignore=self.bridge.needs_no_handling,
            metrics=metrics,
        )
        self.status.inbox = self.inbox
        self.jobs = JobRunner(JobStore(database))

    def fetch_http(self) -> httpx.AsyncClient:
        """The client for URLs the network gives (pictures, media), made on first use: its TLS
        context and CA bundle cost about 1 MB resident, which a bridge that fetches nothing
        never pays."""
        if self._fetch_http is None:
            self._fetch_http = new_http_client()
        return self._fetch_http

    async def _close_fetch_http(self) -> None:
        if self._fetch_http is not None:
            await self._fetch_http.aclose()

    async def _notify_owner(self, user_id: UserID, text: str) -> None:
        await self.management.tell(user_id, text)


class _StatusReport:
    """The ``status`` command's lines. The inbox is made after the management room (it hands
    events to the bridge, which hands commands to the room), so it is set here once made."""

    def __init__(self, health: Health, remote: RemoteDelivery, connectors: ConnectorTable, sessions: Sessions) -> None:
        self._health, self._remote, self._connectors, self._sessions = health, remote, connectors, sessions
        self.inbox: Inbox | None = None

    async def __call__(self) -> list[str]:
        reachable = {None: "not checked yet", True: "yes", False: "NO (see the bridge's log)"}
        connectors = self._connectors.in_order
        states = [f"{c.name} bot: {state.value}" + (f", {detail}" if (detail := self._sessions.detail(c.name, None))
                                                     and state is not SessionState.CONNECTED else "")
                  for c in connectors if (state := self._sessions.state(c.name, None))]
        lines = [
            f"Connectors: {', '.join(c.name for c in connectors) or 'none'}"
            + (f" ({', '.join(states)})" if states else "") + ".",
            f"Virtual identities open: {self._sessions.virtual_count()}.",
            f"Homeserver reaches the bridge: {reachable[self._health.homeserver_reachable]}.",
        ]
        if self.inbox is not None:
            inbox = self.inbox
            lines.append(f"Matrix events: {inbox.handled} handled, {inbox.failed} failed, "
                         f"{inbox.dispatcher.queued} waiting.")
        lines.append(f"Remote messages: {self._remote.sent} posted, {self._remote.failed} failed, "
                     f"{self._remote.dispatcher.queued} waiting.")
        return lines


def connector_status(connectors: ConnectorTable, sessions: Sessions) -> dict[str, dict[str, str | None]]:
    """Each connector's own connection to its network (its bot session), for ``/health``: a
    connector that reports none (a webhook receiver) shows ``null``."""
    status: dict[str, dict[str, str | None]] = {}
    for connector in connectors.in_order:
        state = sessions.state(connector.name, None)
        status[connector.name] = {"state": state.value if state is not None else None,
                                  "detail": sessions.detail(connector.name, None)}
    return status


async def serve(config: BridgeConfig, tokens: AppserviceTokens) -> int:
    async with contextlib.AsyncExitStack() as stack:
        # 1. addresses and connector sections
        listeners: list[tuple[Listener, socket.socket]] = []
        for listener in plan_listeners(config.appservice):
            sock = bind(listener)
            stack.callback(sock.close)
            listeners.append((listener, sock))
        planned = plan_connectors(config, warn=log.warning)
        # 2. store
        log.info("database: %s", describe_database(config.database.url))
        database = await Database.open(config.database.url, pool_size=config.database.pool_size)
        stack.push_async_callback(database.close)
        # 3. Matrix client
        http = httpx.AsyncClient(
            timeout=config.homeserver.timeout_seconds, verify=homeserver_tls(config.homeserver.url))
        stack.push_async_callback(http.aclose)
        memory = MatrixStateStore(database)
        metrics = BridgeMetrics()
        matrix = MatrixClient(http, homeserver_url=config.homeserver.url, as_token=tokens.as_token,
                              bot_user_id=UserID(config.bot_user_id), memory=memory, metrics=metrics)
        # 4. core
        core = _Core(stack, config, database, http, matrix, memory, metrics)
        # 5. connectors
        _build_connectors(planned, core, config, database, matrix, metrics)
        await migrate_connector_tables(database, core.connectors.in_order)  # after bridgekit's, before anything runs
        _register_connector_commands(core.management, core.connectors.in_order)
        wiring.warn_if_logins_are_off(config, core.connectors.in_order)
        await core.management.load()
        replayed = await core.inbox.start()
        stack.push_async_callback(core.inbox.stop)
        await core.remote.start()
        stack.push_async_callback(core.remote.stop)
        # 6. HTTP apps
        state = AppserviceState(
            hs_token=tokens.hs_token.encode(), max_body_bytes=config.appservice.max_body_bytes, inbox=core.inbox,
            bridge=core.bridge, database_dialect=database.dialect, health=core.health,
            connector_status=lambda: connector_status(core.connectors, core.sessions),
            metrics=metrics, outbox=core.remote,
            session_counts=lambda: {(network, state.value): count
                                    for (network, state), count in core.sessions.count_by_state().items()},
        )
        routers = [(c.name, c.http_router()) for c in core.connectors.in_order if isinstance(c, HttpRouteProvider)]
        provisioning = _provisioning(config, core, matrix, http)
        apps = [(listener, sock, listener_app(state, listener, access_log=config.logging.access_log,
                                              connector_routers=routers, provisioning=provisioning))
                for listener, sock in listeners]
        serving = Listeners()
        stack.push_async_callback(serving.stop)
        if not await serving.start(apps):
            return 1
        log.info("bridgekit is accepting transactions (database %s, %d events replayed)", database.dialect, replayed)
        # 7. running
        _in_background(stack, _ping_homeserver(matrix, config, state.health))
        for connector in core.connectors.in_order:
            stack.push_async_callback(_stop_connector, connector)  # also a half-started one
            await connector.start()
            log.info("connector %s started", connector.name)
        await core.jobs.start()  # after the connectors registered their job handlers
        stack.push_async_callback(core.jobs.stop)  # stopped before the connectors their handlers use
        restored = await core.sessions.restore(wait_seconds=RESTORE_WAIT_SECONDS)
        if restored:
            log.info("reconnected %d puppet logins (slow ones go on in the background)", restored)
        core.bridge.connectors_started()
        # Ready: transactions were accepted all along; now they are also handled, and the
        # connectors' own routes work.
        state.health.ready = True
        drop_import_leftovers()
        _in_background(stack, core.sessions.run_idle_closer())
        await serving.wait()
        await serving.stop()  # every listener done before the connectors whose routes they serve stop
    log.info("bridgekit stopped")
    return 0


def homeserver_tls(homeserver_url: str) -> bool | ssl.SSLContext:
    """The TLS verification of the client that talks to the homeserver (and only to it).

    https: the system's usual verification. Plain http (a homeserver on the same host or a
    private network, the common set-up): no TLS is ever made, so the CA bundle is not loaded
    (about 2 MB resident for the bridge's life). The context given instead trusts nothing: a
    request that reached an https URL all the same would fail verification, never pass unchecked."""
    if urlsplit(homeserver_url).scheme.lower() == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names; knows no CA


def _provisioning(config: BridgeConfig, core: _Core, matrix: MatrixClient, http: httpx.AsyncClient) -> Provisioning:
    secret, openid = load_shared_secret(config), config.provisioning.openid
    auth = ProvisioningAuth(
        shared_secret=secret, openid=openid, homeserver_url=config.homeserver.url,
        server_name=config.homeserver.server_name, http=http, cache_seconds=config.provisioning.openid_cache_seconds,
    )
    if auth.enabled:
        ways = [way for way, on in (("shared secret", secret is not None), ("OpenID", openid)) if on]
        log.info("the provisioning API is on (%s), under /_bridgekit/provision", " and ".join(ways))
    return Provisioning(
        auth=auth, management=core.management, bot_user_id=UserID(config.bot_user_id),
        networks=tuple(config.enabled_connectors()),
        login_flows=core.login_flows, linked_portals=core.portals.linked_portals,
        portal_for_room=core.portals.portal_for_room, is_joined=wiring.room_member_check(matrix),
        describe_logins=core.sessions.describe_logins,
    )


def _build_connectors(
    planned: list[PlannedConnector], core: _Core, config: BridgeConfig, database: Database, matrix: MatrixClient,
    metrics: BridgeMetrics,
) -> None:
    kv = KeyValueStore(database)
    signing_keys = SigningKeys(wiring.credentials_key_bytes(config), kv)
    # Media for connectors: as the bot, redirects only through the SSRF guard.
    media = MatrixMedia(lambda mxc: matrix.bot.open_media(ContentURI(mxc)), GuardedHTTP(core.fetch_http, ()))
    for plan in planned:
        section = config.connectors[plan.name]
        context = BridgeContext(
            name=plan.name,
            settings=plan.settings,
            matrix=matrix,
            bot_user_id=UserID(config.bot_user_id),
            server_name=config.homeserver.server_name,
            ghost_prefix=section.ghost_prefix_for(plan.name),
            alias_prefix=section.alias_prefix_for(plan.name),
            log=logging.getLogger(f"bridgekit.connector.{plan.name}"),
            remote=core.remote,
            public_url=config.appservice.public_url,
            private_notices=core.management.tell,
            kv=ConnectorKeyValue(kv, plan.name),
            signing_keys=signing_keys,
            media=media,
            job_queue=ConnectorJobs(core.jobs, plan.name),
            connector_database=database,
            ghost_names=core.remote.ghost_ids,
            metrics_source=metrics.connector(plan.name),
            credentials=core.cipher,
        )
        core.connectors.add(build_connector(plan, context))


def _register_connector_commands(management: ManagementRoom, connectors: list[NetworkConnector]) -> None:
    for connector in connectors:
        if not isinstance(connector, CommandProvider):
            continue
        for command in connector.commands():
            try:
                management.registry.register(command, connector=connector.name)
            except ValueError as error:
                raise ConfigError(str(error)) from None


async def _stop_connector(connector: NetworkConnector) -> None:
    try:
        await connector.stop()
    except Exception:
        log.exception("connector %s failed to stop cleanly", connector.name)


def _in_background(stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None]) -> None:
    task: asyncio.Task[None] = asyncio.create_task(work)

    async def cancel() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(cancel)


async def _ping_homeserver(matrix: MatrixClient, config: BridgeConfig, health: Health) -> None:
    advice = (
        f"Check that the homeserver runs at {config.homeserver.url}, that the registration is "
        f"installed there, and that its url reaches {config.appservice.hs_reachable_url} "
        "(`bridgekit doctor` checks all three)."
    )
    try:
        duration = await matrix.ping(config.appservice.id)
    except Exception as first_error:
        health.homeserver_reachable = False
        log.warning("the homeserver cannot ping this appservice yet: %s. %s Retrying.", first_error, advice)
        try:
            duration = await matrix.ping_until_ready(config.appservice.id, PING_DEADLINE_SECONDS)
        except Exception as error:
            log.error("the homeserver could not ping this appservice: %s. %s", error, advice)
            return
    health.homeserver_reachable = True
    log.info("homeserver ping round trip %d ms: it will deliver what it held back", duration)


__all__ = ["configure_logging", "homeserver_tls", "run_bridge", "serve"]
