"""The directory of a bridge's IRC networks: third-party lookups (Matrix clients ask the bridge
for the networks, channels and users of the ``irc`` protocol) and the one ``nick`` command that
serves every network.

The framework asks one connector per protocol, so whichever IRC connector it asks must know its
sibling networks: they register in an :class:`IrcDirectory`. There is one directory per bridge,
found with :func:`directory_of` from a connector's context: keyed (weakly) by the bridge's core
sink, which every connector of one bridge shares. Not a class attribute nor a plain module global:
two bridges in one process (as in the tests) each see only their own networks, and the framework's
context stays free of anything IRC-specific.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from bridgekit import BridgeContext, Command, CommandContext, CommandReply, PermissionLevel, RemoteUserID, UserID
from bridges.irc.command_tools import NetworkTools
from bridges.irc.commands import IrcCommands
from bridges.irc.network import IrcNetwork

PROTOCOL = "irc"


class ListedNetwork(Protocol):
    """What the directory needs of a network's connector."""

    @property
    def ctx(self) -> BridgeContext: ...
    @property
    def network(self) -> IrcNetwork: ...
    @property
    def tools(self) -> NetworkTools: ...

    async def set_nick(self, user_id: UserID, nick: str) -> str: ...


class IrcDirectory:
    """The IRC networks of one bridge, by name."""

    def __init__(self) -> None:
        self._networks: dict[str, ListedNetwork] = {}
        self._nick_command_owner: str | None = None

    def add(self, connector: ListedNetwork) -> None:
        self._networks[connector.network.name] = connector

    def remove(self, connector: ListedNetwork) -> None:
        if self._networks.get(connector.network.name) is connector:
            del self._networks[connector.network.name]

    def nick_command(self, network: str) -> list[Command]:
        """The ``nick`` command, for the first network that asks (one command serves them all)."""
        if self._nick_command_owner not in (None, network):
            return []
        self._nick_command_owner = network
        return [Command("nick", "Choose your nick on an IRC network", self._nick, usage="<network> <nick>",
                        level=PermissionLevel.USER)]

    def commands(self, network: str) -> list[Command]:
        """``nick`` and the IRC commands (``commands.py``), each registered once for all networks:
        the first network that asks gets them, the others none."""
        nick = self.nick_command(network)
        if not nick:
            return []
        tools = IrcCommands(lambda name: c.tools if (c := self._networks.get(name)) else None,
                            lambda: list(self._networks))
        return [*nick, *tools.commands()]

    async def _nick(self, context: CommandContext, args: list[str]) -> CommandReply:
        names = ", ".join(sorted(self._networks))
        if len(args) != 2:
            return CommandReply(f"Usage: nick <network> <nick> (networks: {names or 'none'}).")
        connector = self._networks.get(args[0])
        if connector is None:
            return CommandReply(f"There is no IRC network '{args[0]}' here (networks: {names}).")
        return CommandReply(await connector.set_nick(context.sender, args[1]))

    # ---- third-party lookups -----------------------------------------------------------------

    def protocol(self) -> dict[str, Any]:
        return {
            "user_fields": ["network", "nickname"],
            "location_fields": ["network", "channel"],
            "icon": "mxc://matrix.org/irc",
            "field_types": {
                "network": {"regexp": "[a-z0-9-]+", "placeholder": "libera"},
                "channel": {"regexp": "[#&][^\\s,:]+", "placeholder": "#channel"},
                "nickname": {"regexp": "[^\\s#&,:][^\\s,:]*", "placeholder": "nick"},
            },
            "instances": [
                {"network_id": name, "desc": f"{name} ({c.ctx.settings.server})", "fields": {"network": name}}
                for name, c in sorted(self._networks.items())
            ],
        }

    def locations(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        connector = self._networks.get(fields.get("network", ""))
        channel = fields.get("channel", "")
        if connector is None or not connector.network.grammar.is_channel(channel):
            return []
        ctx, network = connector.ctx, connector.network
        alias = f"#{ctx.alias_prefix}{network.fold(channel)}:{ctx.server_name}"
        return [{"alias": alias, "protocol": PROTOCOL, "fields": {"network": network.name, "channel": channel}}]

    def users(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        connector = self._networks.get(fields.get("network", ""))
        nick = fields.get("nickname", "")
        if connector is None or not connector.network.grammar.is_nick(nick):
            return []
        network = connector.network
        user_id = connector.ctx.ghost_for(RemoteUserID(network.fold(nick)))
        return [{"userid": user_id, "protocol": PROTOCOL, "fields": {"network": network.name, "nickname": nick}}]


def location_by_alias(ctx: BridgeContext, network: IrcNetwork, alias: str) -> list[dict[str, Any]]:
    """The channel of ``network`` a room alias of the bridge names, if any."""
    localpart = alias[1:].split(":", 1)[0]
    if not localpart.startswith(ctx.alias_prefix):
        return []
    channel = network.grammar.as_channel(localpart[len(ctx.alias_prefix):])
    if not network.grammar.is_channel(channel):
        return []
    return [{"alias": alias, "protocol": PROTOCOL, "fields": {"network": network.name, "channel": channel}}]


def user_by_id(ctx: BridgeContext, network: IrcNetwork, user_id: str) -> list[dict[str, Any]]:
    """The IRC user of ``network`` a ghost's Matrix ID stands for, if any."""
    folded = ctx.sender_of_ghost(user_id)
    if folded is None:
        return []
    nick = network.nick_as_written(folded)
    return [{"userid": user_id, "protocol": PROTOCOL, "fields": {"network": network.name, "nickname": nick}}]


_DIRECTORIES: weakref.WeakKeyDictionary[object, IrcDirectory] = weakref.WeakKeyDictionary()


def directory_of(ctx: BridgeContext) -> IrcDirectory:
    """The directory of the bridge ``ctx`` belongs to (made by its first IRC network)."""
    directory = _DIRECTORIES.get(ctx.remote)
    if directory is None:
        directory = _DIRECTORIES[ctx.remote] = IrcDirectory()
    return directory


__all__ = ["IrcDirectory", "directory_of", "location_by_alias", "user_by_id"]
