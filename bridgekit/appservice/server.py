"""Serving the appservice's apps: one uvicorn server per listener, on sockets bound beforehand.

The HTTP layer only: the composition root (``bridgekit/app.py``) builds the state and the
connectors' routers and hands them here; nothing in this package opens the database or talks to
the homeserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Generator, Sequence
from types import FrameType

import uvicorn
from fastapi import APIRouter, FastAPI

from bridgekit.appservice.app import create_app
from bridgekit.appservice.http_protocol import JoinedWritesHttpToolsProtocol
from bridgekit.appservice.listeners import Listener
from bridgekit.appservice.provision import Provisioning
from bridgekit.appservice.state import AppserviceState
from bridgekit.errors import ConfigError

log = logging.getLogger(__name__)


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


def listener_app(
    state: AppserviceState, listener: Listener, *, access_log: bool, connector_routers: Sequence[tuple[str, APIRouter]],
    provisioning: Provisioning | None = None,
) -> FastAPI:
    """The app of one listener; a connector route that clashes with bridgekit's stops the bridge."""
    try:
        return create_app(
            state, resources=listener.resources, access_log=access_log, connector_routers=connector_routers,
            provisioning=provisioning,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None


class Listeners:
    """The running servers, one per listener: serving until a signal (or one of them stops)."""

    def __init__(self) -> None:
        self._servers: list[_Server] = []
        self._serving: list[asyncio.Task[None]] = []

    async def start(self, apps: Sequence[tuple[Listener, socket.socket, FastAPI]]) -> bool:
        """Serve every app on its socket; False (logged) when one listener did not start."""
        for listener, sock, app in apps:
            server = _Server(_server_config(app, listener), self._servers)
            self._serving.append(asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn {listener.key}"))
        for (listener, _sock, _app), server, task in zip(apps, self._servers, self._serving, strict=True):
            if not await _wait_started(server, task):
                log.error("the listener appservice.%s on %s did not start", listener.key, listener.address)
                return False
            log.info("appservice.%s on %s serves %s", listener.key, listener.address,
                     ", ".join(sorted(resource.value for resource in listener.resources)))
        return True

    async def wait(self) -> None:
        """Until a signal stops them all, or one listener stops by itself."""
        if self._serving:
            await asyncio.wait(self._serving, return_when=asyncio.FIRST_COMPLETED)

    async def stop(self) -> None:
        """Stop every listener (gracefully: requests under way are answered) and wait for them."""
        for server in self._servers:
            server.should_exit = True
        await asyncio.gather(*self._serving, return_exceptions=True)


def _server_config(app: FastAPI, listener: Listener) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        log_config=None,  # keep our logging set-up
        access_log=False,  # replaced by AccessLogMiddleware, which redacts secrets
        lifespan="off",
        timeout_graceful_shutdown=10,
        http=JoinedWritesHttpToolsProtocol,  # each response in one TCP segment (http_protocol.py)
    )


async def _wait_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.01)  # uvicorn offers no start-up event to wait on
    return True


__all__ = ["Listeners", "listener_app"]
