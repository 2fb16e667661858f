"""Who may do what with the bridge: permission levels read from the config's ``permissions`` rules.

A rule maps a full user ID (``@alice:example.org``), a server name (``example.org``) or ``*`` to a
level. The most specific rule wins: user ID, then server name, then ``*``, then no access. So an
admin can grant one user more than the rest of their server (``@bob:partner.org: user`` beside
``"*": relay``), or less (``@spammer:example.org: none`` beside ``example.org: user``).

Pure: this module decides, the callers refuse or allow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bridgekit.commands import PermissionLevel
from bridgekit.ids import UserID

ALLOWED_LEVELS = ("relay", "user", "admin", "none")
"""The values a rule may have; ``none`` exists to block one user or server under a wider rule."""

# Server name grammar of the spec (hostname, IPv4, or [IPv6], with an optional port). Checked so a
# pasted URL or a typo'd wildcard is refused at start-up instead of silently matching nobody.
_SERVER_NAME = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Permissions:
    """The parsed rules; build it with :meth:`from_mapping`."""

    users: Mapping[UserID, PermissionLevel] = field(default_factory=lambda: MappingProxyType({}))
    servers: Mapping[str, PermissionLevel] = field(default_factory=lambda: MappingProxyType({}))
    """Keyed by lower-cased server name: server names are DNS names, which ignore case."""
    default: PermissionLevel = PermissionLevel.NONE
    """The ``*`` rule, or NONE without one: a bridge open to nobody until the admin says otherwise."""

    @classmethod
    def from_mapping(cls, rules: Mapping[str, str]) -> Permissions:
        """Parse config rules; raises ValueError naming the bad key and what is allowed.

        ValueError (not a bridgekit error) so that a pydantic validator around it reports it as a
        config validation error with the config path.
        """
        users: dict[UserID, PermissionLevel] = {}
        servers: dict[str, PermissionLevel] = {}
        default = PermissionLevel.NONE
        for key, value in rules.items():
            level = _parse_level(key, value)
            if key == "*":
                default = level
            elif key.startswith("@"):
                users[_parse_user_id(key)] = level
            else:
                server = _parse_server_name(key)
                if servers.get(server, level) != level:
                    raise ValueError(
                        f"permissions: {key!r} appears twice with different levels (server names ignore "
                        "case); keep one of them"
                    )
                servers[server] = level
        return cls(MappingProxyType(users), MappingProxyType(servers), default)

    def level_for(self, user_id: UserID) -> PermissionLevel:
        """The level of ``user_id``: its own rule, else its server's, else ``*``, else NONE."""
        if user_id in self.users:
            return self.users[user_id]
        # The localpart cannot contain ':', so the server name (which may carry a port) is the rest.
        _, colon, server = user_id.partition(":")
        if colon and server.lower() in self.servers:
            return self.servers[server.lower()]
        return self.default


def default_rules(server_name: str, admin: UserID | None = None) -> dict[str, str]:
    """The rules a new bridge's example config ships with, for homeserver ``server_name``.

    The homeserver's own users get ``user``: the admin of that server already vouches for them,
    and they are who the bridge is for. Everyone else gets ``relay``: a federated user sitting in a
    bridged room should still be heard on the remote side (through the bot, labelled with their
    name), but must not log in, hold remote accounts or run commands on someone else's bridge.
    Nobody is admin unless named, because the framework cannot guess who runs it.
    """
    rules = {"*": "relay", server_name: "user"}
    if admin is not None:
        rules[admin] = "admin"
    return rules


def _parse_level(key: str, value: object) -> PermissionLevel:
    allowed = ", ".join(repr(level) for level in ALLOWED_LEVELS)
    if not isinstance(value, str) or value.strip().lower() not in ALLOWED_LEVELS:
        raise ValueError(f"permissions: {key!r} has level {value!r}; the allowed levels are {allowed}")
    return PermissionLevel[value.strip().upper()]


def _parse_user_id(key: str) -> UserID:
    localpart, colon, server = key[1:].partition(":")
    if not localpart or not colon or not _SERVER_NAME.match(server):
        raise ValueError(
            f"permissions: {key!r} is not a valid user ID; write it in full, like '@alice:example.org'"
        )
    return UserID(key)


def _parse_server_name(key: str) -> str:
    if not _SERVER_NAME.match(key):
        raise ValueError(
            f"permissions: {key!r} is neither a user ID ('@alice:example.org'), a server name "
            "('example.org') nor '*' (other wildcards are not supported)"
        )
    return key.lower()


__all__ = ["ALLOWED_LEVELS", "PermissionLevel", "Permissions", "default_rules"]
