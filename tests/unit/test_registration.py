"""The registration built from the config: what the homeserver will route to the bridge."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bridgekit.config import BridgeConfig
from bridgekit.registration import (
    PUSH_EPHEMERAL_UNSTABLE,
    build_registration,
    check_registration_matches,
    new_token,
    regex_escape,
    registration_to_yaml,
)

AS_TOKEN = "a" * 32
HS_TOKEN = "h" * 32


def config(**sections: Any) -> BridgeConfig:
    return BridgeConfig.model_validate({"homeserver": {"server_name": "example.org"}, **sections})


def registration(cfg: BridgeConfig) -> dict[str, Any]:
    return build_registration(cfg, as_token=AS_TOKEN, hs_token=HS_TOKEN)


def user_regexes(reg: dict[str, Any]) -> list[str]:
    return [entry["regex"] for entry in reg["namespaces"]["users"]]


def test_the_registration_carries_identity_url_and_tokens() -> None:
    reg = registration(config(appservice={"id": "irc", "bot_localpart": "_irc_bot",
                                          "address": "http://bridge:29330"}))
    assert reg["id"] == "irc"
    assert reg["url"] == "http://bridge:29330"
    assert (reg["as_token"], reg["hs_token"]) == (AS_TOKEN, HS_TOKEN)
    assert reg["sender_localpart"] == "_irc_bot"
    assert reg["rate_limited"] is False
    assert reg["receive_ephemeral"] is False
    assert PUSH_EPHEMERAL_UNSTABLE not in reg


def test_the_url_defaults_to_the_listener() -> None:
    reg = registration(config(appservice={"listen": {"host": "10.0.0.5", "port": 9000}}))
    assert reg["url"] == "http://10.0.0.5:9000"


def test_ephemeral_events_are_asked_for_under_both_names() -> None:
    reg = registration(config(appservice={"receive_ephemeral": True}))
    assert reg["receive_ephemeral"] is True
    assert reg[PUSH_EPHEMERAL_UNSTABLE] is True


def test_namespaces_cover_the_bot_and_each_enabled_connector_exclusively() -> None:
    cfg = config(connectors={"irc": {}, "webhook": {"ghost_prefix": "_hook_"},
                             "slack": {"enabled": False}})
    namespaces = registration(cfg)["namespaces"]
    assert namespaces["users"] == [
        {"regex": r"@_bridgekit_bot:example\.org", "exclusive": True},
        {"regex": r"@_irc_.*:example\.org", "exclusive": True},
        {"regex": r"@_hook_.*:example\.org", "exclusive": True},
    ]
    assert namespaces["aliases"] == [
        {"regex": r"#_irc_.*:example\.org", "exclusive": True},
        {"regex": r"#_webhook_.*:example\.org", "exclusive": True},
    ]
    assert namespaces["rooms"] == []


def test_a_ghost_regex_matches_ghosts_and_nobody_else() -> None:
    reg = registration(config(connectors={"irc": {}}))
    ghosts = re.compile(user_regexes(reg)[1])
    assert ghosts.fullmatch("@_irc_libera_alice:example.org")
    assert not ghosts.fullmatch("@alice:example.org")
    assert not ghosts.fullmatch("@_irc_libera_alice:exampleXorg")
    assert not ghosts.fullmatch("@_irc_libera_alice:example.org.evil")


def test_special_characters_in_prefix_and_server_are_escaped() -> None:
    cfg = config(homeserver={"server_name": "chat.example.org:8448"},
                 connectors={"irc": {"ghost_prefix": "irc+"}})
    ghosts = re.compile(user_regexes(registration(cfg))[1])
    assert ghosts.pattern == r"@irc\+.*:chat\.example\.org:8448"
    assert ghosts.fullmatch("@irc+bob:chat.example.org:8448")
    assert not ghosts.fullmatch("@ircccbob:chat.example.org:8448")


def test_the_bot_namespace_is_the_bot_alone() -> None:
    bot = re.compile(user_regexes(registration(config()))[0])
    assert bot.fullmatch("@_bridgekit_bot:example.org")
    assert not bot.fullmatch("@_bridgekit_bot2:example.org")


def test_regex_escape_leaves_plain_localpart_characters_alone() -> None:
    assert regex_escape("_irc-x=y/z") == "_irc-x=y/z"
    assert regex_escape("a.b*c") == r"a\.b\*c"


def test_the_yaml_says_it_holds_secrets_and_reads_back_the_same() -> None:
    reg = registration(config(connectors={"irc": {}}))
    text = registration_to_yaml(reg)
    assert text.startswith("#")
    assert "SECRETS" in text.splitlines()[1]
    assert "never commit it" in text
    assert yaml.safe_load(text) == reg


def test_a_matching_registration_has_no_differences() -> None:
    cfg = config(connectors={"irc": {}})
    installed = yaml.safe_load(registration_to_yaml(registration(cfg)))
    assert check_registration_matches(cfg, installed) == []


def test_differences_from_the_config_are_each_named() -> None:
    installed = registration(config(connectors={"irc": {}}))
    now = config(appservice={"id": "renamed", "listen": {"port": 9999}},
                 connectors={"irc": {}, "webhook": {}})
    problems = check_registration_matches(now, installed)
    assert any(p.startswith("id: the registration says 'bridgekit'") for p in problems)
    assert any(p.startswith("url: ") and "9999" in p for p in problems)
    assert r"namespaces.users: the registration lacks '@_webhook_.*:example\.org' " \
           "(exclusive: true), which the config needs" in problems
    assert any(p.startswith("namespaces.aliases: the registration lacks") for p in problems)
    assert len(problems) == 4


def test_a_namespace_the_config_no_longer_produces_is_named() -> None:
    installed = registration(config(connectors={"irc": {}}))
    problems = check_registration_matches(config(), installed)
    assert r"namespaces.users: the registration has '@_irc_.*:example\.org' (exclusive: true), " \
           "which the config does not produce" in problems


def test_a_malformed_registration_is_reported_not_crashed_on() -> None:
    problems = check_registration_matches(config(), {"namespaces": "nonsense"})
    assert any("namespaces.users: the registration lacks" in p for p in problems)


def test_new_tokens_are_long_and_never_repeat() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(token) >= 64 for token in tokens)


def test_the_example_registration_is_what_generation_gives_for_its_config() -> None:
    example_path = Path(__file__).resolve().parents[2] / "registration" / "bridgekit.example.yaml"
    example = yaml.safe_load(example_path.read_text(encoding="utf-8"))
    assert example["as_token"].startswith("CHANGE_ME")
    assert example["hs_token"].startswith("CHANGE_ME")
    documented = config(connectors={"irc": {}, "webhook": {}})
    assert example == build_registration(
        documented, as_token=example["as_token"], hs_token=example["hs_token"]
    )
