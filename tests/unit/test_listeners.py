"""Which listener serves what (pure), and the config's rule that listeners keep apart."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from pydantic import ValidationError

from bridgekit.appservice.app import Resource
from bridgekit.appservice.listeners import bind, plan_listeners
from bridgekit.config import AppserviceConfig
from bridgekit.errors import ConfigError

APPSERVICE, CONNECTORS, METRICS = Resource.APPSERVICE, Resource.CONNECTORS, Resource.METRICS


def plan(**appservice: Any) -> list[tuple[str, str, set[Resource]]]:
    config = AppserviceConfig.model_validate(appservice)
    return [(listener.key, listener.address, set(listener.resources)) for listener in plan_listeners(config)]


def test_by_default_the_homeserver_listener_also_serves_connectors_and_metrics_are_on_loopback() -> None:
    assert plan() == [
        ("listen", "127.0.0.1:29330", {APPSERVICE, CONNECTORS}),
        ("metrics_listen", "127.0.0.1:29331", {METRICS}),
    ]


def test_a_public_listener_takes_the_connector_routes_away_from_the_homeserver_listener() -> None:
    assert plan(listen={"host": "10.0.0.2"}, public_listen={"port": 8080}, metrics_listen={"host": "::1"}) == [
        ("listen", "10.0.0.2:29330", {APPSERVICE}),
        ("public_listen", "127.0.0.1:8080", {CONNECTORS}),
        ("metrics_listen", "[::1]:29331", {METRICS}),
    ]


def test_metrics_turned_off_fall_back_nowhere() -> None:
    assert plan(metrics_listen={"port": None}) == [("listen", "127.0.0.1:29330", {APPSERVICE, CONNECTORS})]


@pytest.mark.parametrize(
    ("appservice", "message"),
    [
        ({"metrics_listen": {"port": 29330}},
         "appservice.metrics_listen (127.0.0.1:29330) is the address of appservice.listen"),
        ({"public_listen": {"port": 29331}},
         "appservice.metrics_listen (127.0.0.1:29331) is the address of appservice.public_listen"),
        ({"listen": {"host": "0.0.0.0"}, "public_listen": {"port": 29330, "host": "10.1.1.1"}},
         "set public_listen.port to null"),
    ],
)
def test_two_listeners_on_one_address_are_refused(appservice: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        AppserviceConfig.model_validate(appservice)


def test_the_same_port_on_two_addresses_is_fine() -> None:
    config = AppserviceConfig.model_validate({"listen": {"host": "10.0.0.2"}, "metrics_listen": {"port": 29330}})
    assert [listener.address for listener in plan_listeners(config)] == ["10.0.0.2:29330", "127.0.0.1:29330"]


def test_an_address_in_use_names_the_config_key() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = AppserviceConfig.model_validate({"metrics_listen": {"port": port}})
        with pytest.raises(ConfigError, match=f"appservice.metrics_listen: cannot listen on 127.0.0.1:{port}"):
            bind(plan_listeners(config)[1])
