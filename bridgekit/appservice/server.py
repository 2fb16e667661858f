"""Running the bridge: wire the store, the Matrix client, the connectors and the appservice
together, serve, and shut down cleanly.

Start-up order matters for "nothing acknowledged is lost" and for start-up time:
1. open the database and migrate it (nothing else is loaded: 10,000 portals cost nothing here);
2. queue the events the previous run acknowledged but did not handle;
3. serve, on one listener per audience (``appservice/listeners.py``, their addresses bound before
   step 1): transactions are accepted from here on;
4. in the background, ping the homeserver (``/appservice/{id}/ping``): Synapse then redelivers
   what it held back while we were down, at once instead of after its backoff;
5. start the connectors (they connect to their networks, paced by themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from bridgekit.appservice.app import create_app
from bridgekit.appservice.listeners import Listener, bind, plan_listeners
from bridgekit.appservice.state import AppserviceState, Health
from bridgekit.config import AppserviceTokens, BridgeConfig
from bridgekit.config_loader import LoadedConfig
from bridgekit.connector import (
    BridgeContext,
    CommandProvider,
    HttpRouteProvider,
    LoginFlow,
    LoginProvider,
    NetworkConnector,
    PortalListener,
    PortalResolver,
)
from bridgekit.core.bridge import Bridge, OwnUsers
from bridgekit.core.connector_kv import ConnectorKeyValue
from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.core.connectors import connector_settings, load_connectors
from bridgekit.core.double_puppet import double_puppet_status, read_double_puppet_token
from bridgekit.core.echoes import SendsInFlight
from bridgekit.core.inbox import Inbox
from bridgekit.core.jobs import ConnectorJobs, JobRunner
from bridgekit.core.management import ManagementRoom, ManagementServices
from bridgekit.core.matrix_to_remote import MatrixToRemote
from bridgekit.core.permissions import Permissions, default_rules
from bridgekit.core.remote_delivery import RemoteDelivery
from bridgekit.core.routing import DEFAULT_RELAY_TEMPLATE
from bridgekit.core.sessions import Sessions
from bridgekit.core.signing_keys import SigningKeys
from bridgekit.credentials import CredentialCipher, key_bytes, load_key
from bridgekit.errors import BridgekitError, ConfigError
from bridgekit.guarded_http import GuardedHTTP, new_http_client
from bridgekit.ids import ContentURI, RoomID, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.media import MatrixMedia
from bridgekit.store import Database, KeyValueStore, MatrixStateStore
from bridgekit.store.bridge_stores import BridgeStores
from bridgekit.store.inbox import InboxStore
from bridgekit.store.jobs import JobStore
from bridgekit.store.portals import PortalStore
from bridgekit.store.sessions import LoginStore
from bridgekit.store.users import UserStore

log = logging.getLogger(__name__)

PING_DEADLINE_SECONDS = 300.0
RESTORE_WAIT_SECONDS = 15.0
"""How long start-up waits for puppet logins to reconnect before handling events."""


class _Server(uvicorn.Server):
    """uvicorn, minus one habit: after a graceful shutdown on SIGTERM it re-raises the signal,
    which kills the process before the bridge's own shutdown (flushing the inbox's done marks,
    stopping connectors, closing the database) has run. Here a signal only asks the listeners to
    stop; the bridge then finishes its shutdown and exits normally.

    One server per listener, all in ``group``: the first one takes the signals, and a signal
    stops every one of them."""

    def __init__(self, config: uvicorn.Config, group: list[_Server]) -> None:
        super().__init__(config)
        self._group = group
        group.append(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        for server in self._group:
            uvicorn.Server.handle_exit(server, sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread() or self is not self._group[0]:
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def configure_logging(config: BridgeConfig) -> None:
    logging.basicConfig(
        level=config.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO; ours go through the Matrix client's own logging.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_bridge(loaded: LoadedConfig, tokens: AppserviceTokens) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code."""
    configure_logging(loaded.config)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        try:
            return runner.run(serve(_paths_resolved(loaded), tokens))
        except BridgekitError as error:
            # A problem the admin can fix (the database is unreachable, a connector is missing):
            # say it in one line, no traceback.
            log.error("bridgekit cannot start: %s", error)
            return 1


def _paths_resolved(loaded: LoadedConfig) -> BridgeConfig:
    """The config with file paths made absolute, relative to the config file (like
    ``appservice.registration``), whatever directory the bridge was started from."""
    double_puppet = loaded.config.double_puppet.registration
    if not double_puppet:
        return loaded.config
    resolved = loaded.config.double_puppet.model_copy(update={"registration": str(loaded.resolve(double_puppet))})
    return loaded.config.model_copy(update={"double_puppet": resolved})


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is a dependency; this only guards odd platforms): its event
    loop and uvicorn's httptools parser roughly halve the CPU each transaction costs."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve(config: BridgeConfig, tokens: AppserviceTokens) -> int:
    # Every address first: one in use stops the bridge before it touches the database (a second
    # copy of a running bridge must never write to its database).
    listeners = plan_listeners(config.appservice)
    sockets: list[socket.socket] = []
    try:
        for listener in listeners:
            sockets.append(bind(listener))
        database = await Database.open(config.database.url, pool_size=config.database.pool_size)
        http = httpx.AsyncClient(timeout=config.homeserver.timeout_seconds)
        try:
            return await _serve_with(config, tokens, database, http, list(zip(listeners, sockets, strict=True)))
        finally:
            await http.aclose()
            await database.close()
    finally:
        for sock in sockets:
            sock.close()


async def _serve_with(
    config: BridgeConfig, tokens: AppserviceTokens, database: Database, http: httpx.AsyncClient,
    listeners: list[tuple[Listener, socket.socket]],
) -> int:
    server_name = config.homeserver.server_name
    bot_user_id = UserID(config.bot_user_id)
    memory = MatrixStateStore(database)
    matrix = MatrixClient(
        http,
        homeserver_url=config.homeserver.url,
        as_token=tokens.as_token,
        bot_user_id=bot_user_id,
        memory=memory,
    )
    connectors = load_connectors(config)
    # Checked before anything starts: a bad connector setting stops the bridge with its key name.
    settings = {
        connector.name: connector_settings(
            connector.name, connector, config.connectors[connector.name].settings(), warn=log.warning
        )
        for connector in connectors
    }
    await migrate_connector_tables(database, connectors)  # after bridgekit's own, before anything runs
    enabled = {name: section for name, section in config.connectors.items() if section.enabled}
    own_users = OwnUsers(
        bot_user_id, [section.ghost_prefix_for(name) for name, section in enabled.items()], server_name
    )

    async def register_user(user_id: UserID) -> None:
        await matrix.intent(user_id).ensure_registered()

    users = UserStore(database)

    async def notify_owner(user_id: UserID, text: str) -> None:
        await management.tell(user_id, text)

    by_name = {connector.name: connector for connector in connectors}
    sessions = Sessions(
        by_name, LoginStore(database), _credential_cipher(config, connectors), notify_owner,
        virtual_idle_seconds={name: section.virtual_idle_minutes * 60 for name, section in enabled.items()},
    )
    double_puppet = _double_puppet_client(config, http, memory)
    stores = BridgeStores(database)
    fetch_http = new_http_client()
    in_flight = SendsInFlight()
    remote = RemoteDelivery(
        stores, matrix, server_name=server_name,
        ghost_prefixes={name: section.ghost_prefix_for(name) for name, section in enabled.items()},
        max_attempts=config.inbox.max_attempts,
        owner_of=sessions.owner_of, double_puppet=double_puppet, report_session=sessions.report,
        in_flight=in_flight, is_puppet_owner=sessions.has_login,
        # Remote users' pictures come from URLs the network gives: fetched through the SSRF guard.
        fetcher=GuardedHTTP(fetch_http, ()),
        on_portal_change=_portal_listener(by_name),
    )
    health = Health()
    permissions = _permissions(config)
    router = MatrixToRemote(
        by_name, stores, matrix, permissions, sessions, in_flight,
        relay_templates={name: str(section.settings().get("relay_template", DEFAULT_RELAY_TEMPLATE))
                         for name, section in enabled.items()},
    )
    management = ManagementRoom(
        matrix,
        users,
        permissions,
        ManagementServices(
            # Called only once serving, when ``inbox`` (made just below, it needs ``bridge``) exists.
            status=lambda: _status_lines(health, inbox, remote, connectors, sessions),
            link_portal=_command_linker(by_name, remote),
            networks=tuple(enabled),
            set_relay=_relay_switch(stores.portals),
            follow_upgrade=remote.follow_upgrade,
            unlink_portal=remote.unlink_portal,
            sessions=sessions,
            login_flows=lambda network: _login_flows(by_name.get(network)),
            double_puppet_status=lambda user_id: double_puppet_status(double_puppet, user_id, server_name),
        ),
        room_admin_level=config.room_admin_level,
    )
    _register_connector_commands(management, connectors)
    await management.load()
    async def notify(room_id: RoomID, text: str, key: str, mention: UserID) -> None:
        await matrix.bot.send_text(room_id, text, msgtype="m.notice", mentions=[mention], txn_id=key)

    bridge = Bridge(
        connectors, own_users, register_user, memory, management, router, notify,
        alias_prefixes={name: section.alias_prefix_for(name) for name, section in enabled.items()},
        make_alias_portal=remote.create_alias_portal,
    )
    inbox = Inbox(
        InboxStore(database),
        bridge.handle,
        max_attempts=config.inbox.max_attempts,
        retention_ms=int(config.inbox.retention_hours * 3600 * 1000),
        prune_interval=config.inbox.prune_interval_seconds,
        max_queued=config.inbox.max_queued_events,
        on_given_up=bridge.report_given_up,
        ignore=bridge.needs_no_handling,
    )
    replayed = await inbox.start()
    await remote.start()
    state = AppserviceState(
        hs_token=tokens.hs_token.encode(),
        max_body_bytes=config.appservice.max_body_bytes,
        inbox=inbox,
        bridge=bridge,
        database_dialect=database.dialect,
        health=health,
    )
    servers: list[_Server] = []
    serving: list[asyncio.Task[None]] = []
    for listener, sock in listeners:
        server = _Server(_server_config(_create_listener_app(state, config, connectors, listener), listener), servers)
        serving.append(asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn {listener.key}"))
    background: list[asyncio.Task[None]] = []
    jobs = JobRunner(JobStore(database))
    try:
        for (listener, _sock), server, task in zip(listeners, servers, serving, strict=True):
            if not await _wait_started(server, task):
                log.error("the listener appservice.%s on %s did not start", listener.key, listener.address)
                return 1
            log.info("appservice.%s on %s serves %s", listener.key, listener.address,
                     ", ".join(sorted(resource.value for resource in listener.resources)))
        log.info("bridgekit is accepting transactions (database %s, %d events replayed)", database.dialect, replayed)
        background.append(asyncio.create_task(_ping_homeserver(matrix, config, state)))
        kv = KeyValueStore(database)
        # Media for connectors: as the bot, redirects only through the SSRF guard.
        media = MatrixMedia(lambda mxc: matrix.bot.open_media(ContentURI(mxc)), GuardedHTTP(fetch_http, ()))
        await _start_connectors(connectors, settings, config, matrix, bot_user_id, remote, management.tell, kv,
                                signing_keys=SigningKeys(_credentials_key_bytes(config), kv), media=media,
                                jobs=jobs, database=database)
        await jobs.start()  # after the connectors registered their job handlers
        restored = await sessions.restore(wait_seconds=RESTORE_WAIT_SECONDS)
        if restored:
            log.info("reconnected %d puppet logins (slow ones go on in the background)", restored)
        bridge.connectors_started()
        # Ready: transactions were accepted all along; now they are also handled, and the
        # connectors' own routes work.
        state.health.ready = True
        background.append(asyncio.create_task(sessions.run_idle_closer()))
        # Until a signal stops them all, or one listener stops by itself: then the others too.
        await asyncio.wait(serving, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving, return_exceptions=True)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await jobs.stop()  # before the connectors their handlers use
        for connector in connectors:
            try:
                await connector.stop()
            except Exception:
                log.exception("connector %s failed to stop cleanly", connector.name)
        await sessions.stop()
        await inbox.stop()
        await remote.stop()
        await fetch_http.aclose()
    log.info("bridgekit stopped")
    return 0


def _register_connector_commands(management: ManagementRoom, connectors: list[NetworkConnector]) -> None:
    for connector in connectors:
        if not isinstance(connector, CommandProvider):
            continue
        for command in connector.commands():
            try:
                management.registry.register(command, connector=connector.name)
            except ValueError as error:
                raise ConfigError(str(error)) from None


def _create_listener_app(
    state: AppserviceState, config: BridgeConfig, connectors: list[NetworkConnector], listener: Listener
) -> FastAPI:
    routers = [(c.name, c.http_router()) for c in connectors if isinstance(c, HttpRouteProvider)]
    try:
        return create_app(
            state, resources=listener.resources, access_log=config.logging.access_log, connector_routers=routers
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _server_config(app: FastAPI, listener: Listener) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        log_config=None,  # keep our logging set-up
        access_log=False,  # replaced by AccessLogMiddleware, which redacts secrets
        lifespan="off",
        timeout_graceful_shutdown=10,
    )


def _relay_switch(portals: PortalStore) -> Callable[[RoomID, bool], Awaitable[bool]]:
    async def set_relay(room_id: RoomID, enabled: bool) -> bool:
        portal = await portals.portal_for_room(room_id)
        if portal is None:
            return False
        await portals.set_relay(portal.id, enabled)
        return True

    return set_relay


def _permissions(config: BridgeConfig) -> Permissions:
    rules = config.permissions or default_rules(config.homeserver.server_name)
    try:
        return Permissions.from_mapping(rules)
    except ValueError as error:
        raise ConfigError(f"permissions: {error}") from None


def _command_linker(
    connectors: dict[str, NetworkConnector], remote: RemoteDelivery
) -> Callable[[str, str, RoomID], Awaitable[str | None]]:
    """``link`` takes a chat as a user types it: a connector that resolves names (PortalResolver)
    turns it into its canonical ID, or says there is no such chat."""
    async def link(network: str, chat: str, room_id: RoomID) -> str | None:
        connector = connectors.get(network)
        if connector is not None and isinstance(connector, PortalResolver):
            info = await connector.portal_for_alias(chat)
            if info is None:
                return None
            chat = info.chat_id
        await remote.link_portal(network, chat, room_id)
        return chat

    return link


def _portal_listener(connectors: dict[str, NetworkConnector]) -> Callable[[str, str, RoomID | None], Awaitable[None]]:
    async def changed(network: str, chat_id: str, room_id: RoomID | None) -> None:
        connector = connectors.get(network)
        if connector is None or not isinstance(connector, PortalListener):
            return
        if room_id is None:
            await connector.portal_unlinked(chat_id)
        else:
            await connector.portal_linked(chat_id, room_id)

    return changed


def _login_flows(connector: NetworkConnector | None) -> list[LoginFlow]:
    if connector is None or not isinstance(connector, LoginProvider):
        return []
    return list(connector.login_flows)


def _credential_cipher(config: BridgeConfig, connectors: list[NetworkConnector]) -> CredentialCipher | None:
    """The cipher of stored logins; None (logins refused, with the fix) when no key is set."""
    try:
        key = load_key(configured=config.secrets.credentials_key, environ=os.environ)
    except ConfigError as error:
        if "no credentials key" not in str(error):
            raise  # a key is set but unusable: the admin must hear it now, not at the first login
        if any(isinstance(connector, LoginProvider) for connector in connectors):
            log.warning("puppet logins are off: %s", error)  # said only where a network offers logins
        return None
    return CredentialCipher(key, config.secrets.previous_credentials_keys)


def _credentials_key_bytes(config: BridgeConfig) -> list[bytes]:
    """The credentials key's bytes, then the previous keys' (none when no key is set), from
    which connectors' signing keys are derived."""
    try:
        key = load_key(configured=config.secrets.credentials_key, environ=os.environ)
    except ConfigError:
        return []  # no key (a malformed one stopped the bridge already, in _credential_cipher)
    return [key_bytes(k) for k in (key, *config.secrets.previous_credentials_keys)]


def _double_puppet_client(
    config: BridgeConfig, http: httpx.AsyncClient, memory: MatrixStateStore
) -> MatrixClient | None:
    path = config.double_puppet.registration
    if not path:
        return None
    try:
        token = read_double_puppet_token(Path(path))
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"double_puppet.registration: {error}") from None
    return MatrixClient(
        http, homeserver_url=config.homeserver.url, as_token=token,
        bot_user_id=UserID(config.bot_user_id), memory=memory,
    )


async def _status_lines(
    health: Health, inbox: Inbox, remote: RemoteDelivery, connectors: list[NetworkConnector], sessions: Sessions
) -> list[str]:
    reachable = {None: "not checked yet", True: "yes", False: "NO (see the bridge's log)"}
    states = [f"{c.name} bot: {state.value}" for c in connectors if (state := sessions.state(c.name, None))]
    return [
        f"Connectors: {', '.join(c.name for c in connectors) or 'none'}"
        + (f" ({', '.join(states)})" if states else "") + ".",
        f"Virtual identities open: {sessions.virtual_count()}.",
        f"Homeserver reaches the bridge: {reachable[health.homeserver_reachable]}.",
        f"Matrix events: {inbox.handled} handled, {inbox.failed} failed, {inbox.dispatcher.queued} waiting.",
        f"Remote messages: {remote.sent} posted, {remote.failed} failed, {remote.dispatcher.queued} waiting.",
    ]


async def _wait_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.01)  # uvicorn offers no start-up event to wait on
    return True


async def _ping_homeserver(matrix: MatrixClient, config: BridgeConfig, state: AppserviceState) -> None:
    advice = (
        f"Check that the homeserver runs at {config.homeserver.url}, that the registration is "
        f"installed there, and that its url reaches {config.appservice.hs_reachable_url} "
        "(`bridgekit doctor` checks all three)."
    )
    try:
        duration = await matrix.ping(config.appservice.id)
    except Exception as first_error:
        state.health.homeserver_reachable = False
        log.warning("the homeserver cannot ping this appservice yet: %s. %s Retrying.", first_error, advice)
        try:
            duration = await matrix.ping_until_ready(config.appservice.id, PING_DEADLINE_SECONDS)
        except Exception as error:
            log.error("the homeserver could not ping this appservice: %s. %s", error, advice)
            return
    state.health.homeserver_reachable = True
    log.info("homeserver ping round trip %d ms: it will deliver what it held back", duration)


async def _start_connectors(
    connectors: list[NetworkConnector],
    settings: dict[str, Any],
    config: BridgeConfig,
    matrix: MatrixClient,
    bot_user_id: UserID,
    remote: RemoteDelivery,
    tell_user: Callable[[UserID, str], Awaitable[None]],
    kv: KeyValueStore,
    *,
    signing_keys: SigningKeys,
    media: MatrixMedia,
    jobs: JobRunner,
    database: Database,
) -> None:
    for connector in connectors:
        section = config.connectors[connector.name]
        context = BridgeContext(
            name=connector.name,
            settings=settings[connector.name],
            matrix=matrix,
            bot_user_id=bot_user_id,
            server_name=config.homeserver.server_name,
            ghost_prefix=section.ghost_prefix_for(connector.name),
            alias_prefix=section.alias_prefix_for(connector.name),
            log=logging.getLogger(f"bridgekit.connector.{connector.name}"),
            remote=remote,
            public_url=config.appservice.public_url,
            private_notices=tell_user,
            kv=ConnectorKeyValue(kv, connector.name),
            signing_keys=signing_keys,
            media=media,
            job_queue=ConnectorJobs(jobs, connector.name),
            connector_database=database,
        )
        await connector.start(context)
        log.info("connector %s started", connector.name)


__all__ = ["run_bridge", "serve"]

