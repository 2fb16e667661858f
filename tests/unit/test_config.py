"""The config models: defaults, the rules they enforce, and the schema describing itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridgekit.config import (
    AppserviceConfig,
    AppserviceTokens,
    BridgeConfig,
    ConnectorSection,
    describe_expected,
    iter_keys,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_homeserver_reaches_the_listener_unless_an_address_is_given() -> None:
    assert AppserviceConfig().hs_reachable_url == "http://127.0.0.1:29330"
    assert AppserviceConfig(address="https://bridge.internal").hs_reachable_url == (
        "https://bridge.internal"
    )
    ipv6 = AppserviceConfig.model_validate({"listen": {"host": "::1", "port": 9}})
    assert ipv6.hs_reachable_url == "http://[::1]:9"


def test_connector_prefixes_default_to_the_connector_name() -> None:
    section = ConnectorSection()
    assert section.ghost_prefix_for("irc") == "_irc_"
    assert section.alias_prefix_for("irc") == "_irc_"


@pytest.mark.parametrize(
    "data",
    [
        {"appservice": {"bot_localpart": "Bridge Bot"}},
        {"connectors": {"irc": {"ghost_prefix": "IRC_"}}},
        {"connectors": {"irc": {"ghost_prefix": ""}}},
        {"connectors": {"IRC": {}}},
        {"homeserver": {"url": "synapse:8008"}},
        {"appservice": {"public_url": "bridge.example.org"}},
        {"homeserver": {"server_name": "@bot:example.org"}},
        {"appservice": {"max_body_bytes": 1024}},
    ],
)
def test_values_that_would_break_the_bridge_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BridgeConfig.model_validate(data)


def test_disabled_connectors_may_share_a_prefix() -> None:
    config = BridgeConfig.model_validate(
        {"connectors": {"irc": {}, "old-irc": {"ghost_prefix": "_irc_irc_", "enabled": False}}}
    )
    assert list(config.enabled_connectors()) == ["irc"]


def test_networks_may_share_a_ghost_prefix_their_names_keep_them_apart() -> None:
    config = BridgeConfig.model_validate({"connectors": {
        "libera": {"ghost_prefix": "_irc_", "alias_prefix": "_irc_libera_"},
        "oftc": {"ghost_prefix": "_irc_", "alias_prefix": "_irc_oftc_"},
    }})
    assert list(config.enabled_connectors()) == ["libera", "oftc"]


def test_a_connector_name_with_an_underscore_is_refused() -> None:
    with pytest.raises(ValueError, match="lower-case letters, digits and '-'"):
        BridgeConfig.model_validate({"connectors": {"old_irc": {}}})


def test_tokens_are_never_shown_in_a_repr() -> None:
    tokens = AppserviceTokens(as_token="a" * 20, hs_token="h" * 20)
    assert "aaaa" not in repr(tokens)


def test_the_schema_describes_what_each_key_expects() -> None:
    fields = dict(iter_keys())
    assert describe_expected(fields["appservice.listen.port"]) == "an integer between 1 and 65535"
    assert describe_expected(fields["appservice.address"]) == "a string or null"
    assert describe_expected(fields["inbox.retention_hours"]) == "a number greater than 0"
    assert "connectors.<name>.ghost_prefix" in fields


def test_every_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    undocumented = [path for path, _ in iter_keys() if f"`{path}`" not in text]
    assert undocumented == []


def test_room_admin_level_is_a_level_or_an_event_type() -> None:
    assert BridgeConfig().room_admin_level == "m.room.power_levels"
    assert BridgeConfig.model_validate({"room_admin_level": "100"}).room_admin_level == 100  # from the environment
    assert BridgeConfig.model_validate({"room_admin_level": 50}).room_admin_level == 50
    assert BridgeConfig.model_validate({"room_admin_level": "m.room.name"}).room_admin_level == "m.room.name"
    with pytest.raises(ValueError, match="event type"):
        BridgeConfig.model_validate({"room_admin_level": "admins please"})
