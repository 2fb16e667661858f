"""Permission rules from the config: the most specific rule wins, and bad rules are refused by name."""

from __future__ import annotations

import re

import pytest

from bridgekit.core.permissions import PermissionLevel, Permissions, default_rules
from bridgekit.ids import UserID

RULES = {
    "*": "relay",
    "example.org": "user",
    "@boss:example.org": "admin",
    "@bob:partner.org": "user",
    "@spammer:example.org": "none",
}


@pytest.mark.parametrize(
    ("user", "level"),
    [
        ("@alice:example.org", PermissionLevel.USER),  # her server's rule
        ("@boss:example.org", PermissionLevel.ADMIN),  # their own rule beats the server's
        ("@spammer:example.org", PermissionLevel.NONE),  # ... also when it grants less
        ("@bob:partner.org", PermissionLevel.USER),  # one user granted more than the rest of their server
        ("@carol:partner.org", PermissionLevel.RELAY),  # the rest of it falls back to '*'
        ("@dave:elsewhere.net", PermissionLevel.RELAY),
    ],
)
def test_the_most_specific_rule_wins(user: str, level: PermissionLevel) -> None:
    assert Permissions.from_mapping(RULES).level_for(UserID(user)) is level


def test_without_a_star_rule_strangers_get_nothing() -> None:
    permissions = Permissions.from_mapping({"example.org": "user"})
    assert permissions.level_for(UserID("@eve:elsewhere.net")) is PermissionLevel.NONE


def test_server_names_ignore_case_and_may_carry_a_port() -> None:
    permissions = Permissions.from_mapping({"Example.ORG": "Admin", "localhost:8448": "user"})
    assert permissions.level_for(UserID("@alice:example.org")) is PermissionLevel.ADMIN
    assert permissions.level_for(UserID("@test:localhost:8448")) is PermissionLevel.USER
    assert permissions.level_for(UserID("@test:localhost")) is PermissionLevel.NONE


def test_levels_are_ordered() -> None:
    assert PermissionLevel.NONE < PermissionLevel.RELAY < PermissionLevel.USER < PermissionLevel.ADMIN
    assert PermissionLevel.RELAY.label == "relay"


def test_an_unknown_level_is_refused_naming_the_key_and_the_allowed_levels() -> None:
    expected = (
        "permissions: 'example.org' has level 'superuser'; the allowed levels are 'relay', 'user', 'admin', 'none'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        Permissions.from_mapping({"example.org": "superuser"})


def test_a_level_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("'@alice:example.org' has level True")):
        Permissions.from_mapping({"@alice:example.org": True})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("@alice", "is not a valid user ID; write it in full, like '@alice:example.org'"),
        ("https://example.org", "is neither a user ID"),
        ("*.example.org", "other wildcards are not supported"),
        ("", "is neither a user ID"),
    ],
)
def test_a_key_that_is_no_user_server_or_star_is_refused(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'permissions: {key!r}')}") as raised:
        Permissions.from_mapping({key: "user"})
    assert message in str(raised.value)


def test_one_server_spelled_twice_with_different_levels_is_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        Permissions.from_mapping({"example.org": "user", "EXAMPLE.org": "admin"})


def test_a_new_bridge_serves_its_own_server_and_relays_everyone_else() -> None:
    rules = default_rules("example.org", admin=UserID("@boss:example.org"))
    permissions = Permissions.from_mapping(rules)
    assert permissions.level_for(UserID("@alice:example.org")) is PermissionLevel.USER
    assert permissions.level_for(UserID("@carol:partner.org")) is PermissionLevel.RELAY
    assert permissions.level_for(UserID("@boss:example.org")) is PermissionLevel.ADMIN
    assert "@boss:example.org" not in default_rules("example.org")
