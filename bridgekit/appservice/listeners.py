"""Listeners by resource (as hookshot has them): which listener serves which routes, and their
sockets.

Three audiences, three listeners, so that publishing one never publishes the others:

- ``appservice.listen``: the homeserver (``/_matrix``) and orchestrators' probes
  (``/health/live``, ``/health/ready``: a yes or no, nothing else). Loopback or an internal network.
- ``appservice.public_listen``: the connectors' own routes (webhooks, IRC text and media links),
  what ``public_url`` leads to through a reverse proxy. Unset (``port: null``), these routes are
  served on ``listen``, as they were when there was one listener.
- ``appservice.metrics_listen``: ``/metrics``, the detailed ``/health`` and the probes, for
  Prometheus and the admin; 127.0.0.1:29331 by default. Unset, there is no such listener: metrics
  never fall back to a listener that exists for someone else.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from bridgekit.appservice.app import Resource
from bridgekit.config import AppserviceConfig
from bridgekit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Listener:
    key: str
    """Its config key under ``appservice`` (``listen``, ``public_listen``, ``metrics_listen``)."""
    host: str
    port: int
    resources: frozenset[Resource]

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


def plan_listeners(config: AppserviceConfig) -> list[Listener]:
    """The listeners to open, the homeserver's first."""
    public, metrics = config.public_listen, config.metrics_listen
    homeserver_side = {Resource.APPSERVICE} if public.port is not None else {Resource.APPSERVICE, Resource.CONNECTORS}
    listeners = [Listener("listen", config.listen.host, config.listen.port, frozenset(homeserver_side))]
    if public.port is not None:
        listeners.append(Listener("public_listen", public.host, public.port, frozenset({Resource.CONNECTORS})))
    if metrics.port is not None:
        listeners.append(Listener("metrics_listen", metrics.host, metrics.port, frozenset({Resource.METRICS})))
    return listeners


def bind(listener: Listener) -> socket.socket:
    """A socket bound to the listener's address (listening starts when the server serves it).

    Bound by the bridge itself, before anything else starts, so that an address in use is one
    clear error naming the config key, not a server that exits the process from inside."""
    host = listener.host.strip("[]")
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise ConfigError(f"appservice.{listener.key}: cannot listen on {listener.address}: {error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise ConfigError(
            f"appservice.{listener.key}: cannot listen on {listener.address}: {reason} "
            "(another bridge on this machine? give each listener a free port)"
        ) from None
    return sock


__all__ = ["Listener", "bind", "plan_listeners"]
