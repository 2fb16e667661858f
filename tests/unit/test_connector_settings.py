"""A connector's own config section, validated by its Settings model before anything starts."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from bridgekit import ConfigError
from bridgekit.core.connectors import connector_settings


class Settings(BaseModel):
    server: str
    port: int = 6667


class Typed:
    Settings = Settings


class Untyped:
    pass


def test_a_typed_section_becomes_its_model_without_the_core_keys() -> None:
    warnings: list[str] = []
    raw: dict[str, Any] = {"server": "irc.example", "port": "6697", "factory": "x:Y", "relay_template": "{text}"}
    settings = connector_settings("irc", Typed, raw, warn=warnings.append)
    assert settings == Settings(server="irc.example", port=6697)
    assert warnings == []


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        connector_settings("irc", Typed, {"server": "irc.example", "port": "many"}, warn=lambda _: None)
    assert "connectors.irc.port" in str(caught.value)
    with pytest.raises(ConfigError, match=r"connectors\.irc\.server"):
        connector_settings("irc", Typed, {}, warn=lambda _: None)


def test_unknown_keys_are_warned_about() -> None:
    warnings: list[str] = []
    connector_settings("irc", Typed, {"server": "s", "sever": "typo"}, warn=warnings.append)
    assert len(warnings) == 1
    assert "connectors.irc.sever" in warnings[0]


def test_an_untyped_connector_gets_the_raw_keys() -> None:
    raw = {"anything": 1, "factory": "x:Y"}
    assert connector_settings("web", Untyped, raw, warn=lambda _: None) == {"anything": 1}
