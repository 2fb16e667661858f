"""The appservice registration, derived from the config alone (pure: no files, no network).

The homeserver admin installs the registration document; it tells the homeserver which users and
aliases belong to the bridge and how the two authenticate to each other. Its namespaces are built
only from the config (the bot's ID and each enabled connector's ghost and alias prefixes), so the
registration and the IDs the bridge actually uses can never disagree; ``check_registration_matches``
tells when an installed registration has fallen behind the config.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from bridgekit.config import BridgeConfig

# The legacy (MSC2409) name of receive_ephemeral, still read by older homeservers.
PUSH_EPHEMERAL_UNSTABLE = "de.sorunome.msc2409.push_ephemeral"

# Keys build_registration writes; anything else in an installed registration was added by hand.
MANAGED_KEYS = frozenset({
    "id", "url", "as_token", "hs_token", "sender_localpart", "rate_limited",
    "receive_ephemeral", PUSH_EPHEMERAL_UNSTABLE, "namespaces",
})

# Characters with a meaning in POSIX extended, Python, Go (RE2) and Rust regexes. Escaping only
# these keeps the pattern valid in all of them (re.escape also escapes '-', '#', '~', ' ' ...).
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def regex_escape(text: str) -> str:
    """``text`` as a regex matching itself, portable across homeserver implementations."""
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in text)


def new_token() -> str:
    """A fresh random token (64 URL-safe characters, 384 bits)."""
    return secrets.token_urlsafe(48)


def namespaces(config: BridgeConfig) -> dict[str, list[dict[str, Any]]]:
    """The bot's exact ID, then each enabled connector's ghosts and aliases, all exclusive."""
    server = regex_escape(config.homeserver.server_name)
    users = [{"regex": regex_escape(config.bot_user_id), "exclusive": True}]
    aliases: list[dict[str, Any]] = []
    for name, section in config.enabled_connectors().items():
        ghosts = regex_escape(section.ghost_prefix_for(name))
        portals = regex_escape(section.alias_prefix_for(name))
        for kind, entry in ((users, {"regex": f"@{ghosts}.*:{server}", "exclusive": True}),
                            (aliases, {"regex": f"#{portals}.*:{server}", "exclusive": True})):
            if entry not in kind:  # connectors sharing a prefix (IRC networks) share one entry
                kind.append(entry)
    return {"users": users, "aliases": aliases, "rooms": []}


def build_registration(
    config: BridgeConfig, *, as_token: str, hs_token: str, protocols: Sequence[str] = ()
) -> dict[str, Any]:
    """The registration document for ``config`` with the given tokens; ``protocols`` are the
    third-party protocols the connectors answer for (the homeserver asks only about those)."""
    appservice = config.appservice
    registration: dict[str, Any] = {
        "id": appservice.id,
        "url": appservice.hs_reachable_url,
        "as_token": as_token,
        "hs_token": hs_token,
        "sender_localpart": appservice.bot_localpart,
        # Ghosts speak for many remote people at once; homeserver rate limits would drop them.
        "rate_limited": False,
        "receive_ephemeral": appservice.receive_ephemeral,
    }
    if appservice.receive_ephemeral:
        registration[PUSH_EPHEMERAL_UNSTABLE] = True
    registration["namespaces"] = namespaces(config)
    if protocols:
        registration["protocols"] = sorted(set(protocols))
    return registration


def build_double_puppet_registration(config: BridgeConfig, *, as_token: str, hs_token: str) -> dict[str, Any]:
    """The second registration that lets the bridge post as this homeserver's own users
    (double puppeting), the method mautrix bridges use.

    Non-exclusive (users keep their accounts), no URL (the homeserver sends it nothing: it
    exists only for its as_token), its own sender so it cannot be mistaken for the bridge.
    Only a homeserver admin can install it, and it lets the bridge act as any local user:
    the bridge uses it only for users logged in to a network through it.
    """
    server = regex_escape(config.homeserver.server_name)
    return {
        "id": f"{config.appservice.id}-doublepuppet",
        "url": None,
        "as_token": as_token,
        "hs_token": hs_token,
        "sender_localpart": f"{config.appservice.bot_localpart}_doublepuppet_{secrets.token_hex(4)}",
        "rate_limited": False,
        "namespaces": {"users": [{"regex": f"@.*:{server}", "exclusive": False}], "aliases": [], "rooms": []},
    }


def registration_to_yaml(registration: Mapping[str, Any]) -> str:
    """The registration as YAML, under a header saying it holds secrets."""
    header = (
        f"# Matrix appservice registration of {registration.get('id', 'bridgekit')!s}, "
        "written by `bridgekit generate-registration`.\n"
        "# It holds SECRETS (as_token, hs_token): keep it private and never commit it.\n"
        "# Install it on the homeserver (see registration/README.md); after a config change,\n"
        "# regenerate it (the tokens are kept) and reload it on the homeserver.\n"
    )
    body = yaml.safe_dump(dict(registration), sort_keys=False, default_flow_style=False)
    return header + body


def check_registration_matches(
    config: BridgeConfig, registration: Mapping[str, Any]
) -> list[str]:
    """What an installed registration says differently from the config, one sentence each."""
    expected = build_registration(config, as_token="", hs_token="")
    problems = [
        f"{key}: the registration says {registration.get(key)!r} but {source} gives "
        f"{expected[key]!r}"
        for key, source in (
            ("id", "appservice.id"),
            ("url", "appservice.address (or appservice.listen)"),
            ("sender_localpart", "appservice.bot_localpart"),
            ("receive_ephemeral", "appservice.receive_ephemeral"),
        )
        if registration.get(key, False if key == "receive_ephemeral" else None) != expected[key]
    ]
    actual_namespaces = registration.get("namespaces")
    if not isinstance(actual_namespaces, Mapping):
        actual_namespaces = {}
    for kind, wanted in expected["namespaces"].items():
        problems += _namespace_differences(kind, wanted, actual_namespaces.get(kind))
    return problems


def _namespace_differences(kind: str, wanted: list[dict[str, Any]], actual: Any) -> list[str]:
    want = {(entry["regex"], entry["exclusive"]) for entry in wanted}
    have = {
        (entry.get("regex"), entry.get("exclusive"))
        for entry in (actual if isinstance(actual, list) else [])
        if isinstance(entry, Mapping)
    }
    missing = [
        f"namespaces.{kind}: the registration lacks {_entry(regex, exclusive)}, which the config "
        "needs"
        for regex, exclusive in sorted(want - have, key=str)
    ]
    extra = [
        f"namespaces.{kind}: the registration has {_entry(regex, exclusive)}, which the config "
        "does not produce"
        for regex, exclusive in sorted(have - want, key=str)
    ]
    return missing + extra


def _entry(regex: Any, exclusive: Any) -> str:
    # Shown as in the YAML file, so an admin can search for it there.
    flag = str(exclusive).lower() if isinstance(exclusive, bool) else repr(exclusive)
    return f"'{regex}' (exclusive: {flag})"


__all__ = [
    "MANAGED_KEYS",
    "PUSH_EPHEMERAL_UNSTABLE",
    "build_registration",
    "check_registration_matches",
    "namespaces",
    "new_token",
    "regex_escape",
    "registration_to_yaml",
]
