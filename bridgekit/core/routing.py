"""The one routing rule for Matrix -> remote (DESIGN §3), as a pure decision.

For a message from Matrix user S in portal P, the first that applies wins:

1. S's connected **puppet** session (their own remote account): the message is theirs.
2. S's **virtual** session (an identity the bridge holds for S on the remote network), created
   lazily when the connector offers virtual users and S's permission level allows it.
3. P's **relay** (the bridge bot's session), when relaying is on for P and S may be relayed:
   the text goes out as ``<name> text`` through the bot.
4. Otherwise a **refusal** the user sees, saying how to get bridged.

Deciding is separate from doing: this module only chooses, so every mode is one branch of one
function and can be tested without a network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridgekit.core.permissions import PermissionLevel


class RouteKind(enum.Enum):
    PUPPET = "puppet"
    VIRTUAL = "virtual"
    RELAY = "relay"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """What the decision needs to know about the sender and the portal."""

    sender_level: PermissionLevel
    has_connected_puppet: bool
    """The sender has a puppet session on this network and it is connected."""
    network_offers_virtual: bool
    """The connector can create a virtual identity for a Matrix user (virtual-user mode on)."""
    relay_enabled: bool
    """Relaying is on for this portal and the network has a bot session."""
    network: str


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    refusal: str | None = None
    """For REFUSE: what to tell the user (how to get bridged)."""


def choose_route(facts: RoutingFacts) -> Route:
    """The session kind that carries the message, or the refusal to show."""
    # Puppets first: a user who logged in wants to speak as themselves, even where a relay runs.
    if facts.has_connected_puppet and facts.sender_level >= PermissionLevel.USER:
        return Route(RouteKind.PUPPET)
    if facts.network_offers_virtual and facts.sender_level >= PermissionLevel.USER:
        return Route(RouteKind.VIRTUAL)
    if facts.relay_enabled and facts.sender_level >= PermissionLevel.RELAY:
        return Route(RouteKind.RELAY)
    return Route(RouteKind.REFUSE, refusal=_refusal(facts))


def _refusal(facts: RoutingFacts) -> str:
    if facts.sender_level < PermissionLevel.RELAY:
        return (
            f"Your message was not bridged to {facts.network}: this bridge's permissions do not "
            "include you. Ask the bridge's admin to add you to the config's 'permissions'."
        )
    if facts.sender_level < PermissionLevel.USER:
        return (
            f"Your message was not bridged to {facts.network}: relaying is off in this room and your "
            "permission level ('relay') cannot log in. Ask a room admin to turn the relay on "
            "('!bk relay on'), or the bridge's admin to give you the 'user' level."
        )
    return (
        f"Your message was not bridged to {facts.network}: you are not logged in and relaying is off "
        "in this room. Send 'login' to the bridge bot in a direct chat, or ask a room admin to turn "
        "the relay on ('!bk relay on')."
    )


def relay_text(template: str, *, name: str, user_id: str, text: str) -> str:
    """The relay line for one message: ``template`` with ``{name}``, ``{user_id}`` and ``{text}``.

    A template that names anything else is refused by :func:`check_relay_template` at start-up,
    so formatting here cannot fail on a message.
    """
    return template.format(name=name, user_id=user_id, text=text)


def check_relay_template(template: str) -> None:
    """Raise ValueError naming the problem when ``template`` is not usable."""
    try:
        relay_text(template, name="alice", user_id="@alice:example.org", text="hello")
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"relay template {template!r} is not valid: use {{name}}, {{user_id}} and {{text}} "
            f"(and double braces for a literal brace): {error!r}"
        ) from None
    if "{text}" not in template:
        raise ValueError(f"relay template {template!r} must contain {{text}}, or the message itself is lost")


DEFAULT_RELAY_TEMPLATE = "<{name}> {text}"

__all__ = [
    "DEFAULT_RELAY_TEMPLATE",
    "Route",
    "RouteKind",
    "RoutingFacts",
    "check_relay_template",
    "choose_route",
    "relay_text",
]
