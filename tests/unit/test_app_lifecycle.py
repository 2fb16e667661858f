"""The composition root's one lifecycle: a failure part-way through start-up closes exactly what
was opened, in the reverse order of construction (``bridgekit/app.py``).

In process, on a real SQLite file and real sockets; the homeserver is an address nobody answers
(start-up does not wait for it: the ping runs in the background)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from bridgekit import BridgeContext
from bridgekit.app import homeserver_tls, serve
from bridgekit.config import AppserviceTokens, BridgeConfig
from bridgekit.store import Database

happened: list[str] = []


class Recording:
    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        happened.append(f"built {self.name}")

    async def start(self) -> None:
        happened.append(f"started {self.name}")

    async def stop(self) -> None:
        happened.append(f"stopped {self.name}")


class FailsToStart(Recording):
    async def start(self) -> None:
        happened.append(f"failed to start {self.name}")
        raise RuntimeError("the network is down")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def config(tmp_path: Path, port: int, connectors: dict[str, Any]) -> BridgeConfig:
    return BridgeConfig.model_validate({
        "homeserver": {"url": "http://127.0.0.1:9", "server_name": "example.org"},
        "appservice": {"listen": {"host": "127.0.0.1", "port": port}, "metrics_listen": {"port": None}},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"},
        "connectors": connectors,
    })


TOKENS = AppserviceTokens(as_token="a" * 32, hs_token="h" * 32)


async def test_a_connector_failing_to_start_stops_the_started_ones_in_reverse_and_frees_everything(
    tmp_path: Path,
) -> None:
    happened.clear()
    port = free_port()
    with pytest.raises(RuntimeError, match="the network is down"):
        await serve(config(tmp_path, port, {
            "first": {"factory": f"{__name__}:Recording"},
            "second": {"factory": f"{__name__}:FailsToStart"},
            "third": {"factory": f"{__name__}:Recording"},
        }), TOKENS)
    assert happened == [
        "built first", "built second", "built third",  # all built before anything serves
        "started first", "failed to start second",  # the third is never started, nor stopped
        "stopped second", "stopped first",  # the half-started one too, then in reverse
    ]
    with socket.socket() as again:  # the listener's socket was closed
        again.bind(("127.0.0.1", port))
    reopened = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")  # and the database
    await reopened.close()


async def test_a_connector_refused_at_construction_leaves_nothing_running(tmp_path: Path) -> None:
    happened.clear()
    port = free_port()
    with pytest.raises(Exception, match="portal_messages"):
        await serve(config(tmp_path, port, {
            "first": {"factory": f"{__name__}:Recording"},
            "both": {"factory": f"{__name__}:Undeclared"},
        }), TOKENS)
    assert happened == ["built first", "built both"]  # nothing started, so nothing to stop
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


class Undeclared(Recording):
    """Sessions and handle_matrix_event, without saying which receives portal messages."""

    async def relay_session(self) -> None:
        return None

    async def handle_matrix_event(self, event: object) -> None: ...


def test_the_homeserver_client_loads_no_ca_bundle_for_plain_http_and_verifies_https() -> None:
    assert homeserver_tls("https://matrix.example.org") is True  # httpx's usual verification
    for url in ("http://127.0.0.1:8008", "HTTP://synapse:8008/"):
        context = homeserver_tls(url)
        assert isinstance(context, ssl.SSLContext)
        # Were TLS ever made with it, it would verify, and trust nobody: it fails closed.
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.cert_store_stats()["x509_ca"] == 0
