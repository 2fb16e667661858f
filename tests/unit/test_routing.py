"""The routing rule: which identity carries a Matrix user's message, or what they are told."""

from __future__ import annotations

import pytest

from bridgekit.core.permissions import PermissionLevel
from bridgekit.core.routing import (
    RouteKind,
    RoutingFacts,
    check_relay_template,
    choose_route,
    relay_text,
)

USER, RELAY, NONE = PermissionLevel.USER, PermissionLevel.RELAY, PermissionLevel.NONE


def facts(
    level: PermissionLevel = USER, *, puppet: bool = False, virtual: bool = False, relay: bool = False
) -> RoutingFacts:
    return RoutingFacts(level, puppet, virtual, relay, network="irc")


@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        (facts(puppet=True, virtual=True, relay=True), RouteKind.PUPPET),  # own account beats everything
        (facts(virtual=True, relay=True), RouteKind.VIRTUAL),
        (facts(relay=True), RouteKind.RELAY),
        (facts(RELAY, puppet=True, virtual=True, relay=True), RouteKind.RELAY),  # relay level: bot only
        (facts(), RouteKind.REFUSE),
        (facts(NONE, relay=True), RouteKind.REFUSE),
    ],
)
def test_the_first_applicable_route_wins(situation: RoutingFacts, expected: RouteKind) -> None:
    assert choose_route(situation).kind is expected


def test_a_refusal_says_how_to_get_bridged() -> None:
    logged_out = choose_route(facts()).refusal or ""
    assert "login" in logged_out
    assert "relay on" in logged_out
    relay_only = choose_route(facts(RELAY)).refusal or ""
    assert "'user' level" in relay_only
    outsider = choose_route(facts(NONE)).refusal or ""
    assert "permissions" in outsider


def test_relay_lines_follow_the_template() -> None:
    assert relay_text("<{name}> {text}", name="alice", user_id="@alice:hs", text="hi") == "<alice> hi"
    assert relay_text("[{user_id}] {text}", name="a", user_id="@a:hs", text="x {y}") == "[@a:hs] x {y}"


@pytest.mark.parametrize("template", ["<{nick}> {text}", "<{name}>", "{text} {", "{0} {text}"])
def test_bad_relay_templates_are_refused_at_start(template: str) -> None:
    with pytest.raises(ValueError, match="relay template"):
        check_relay_template(template)
