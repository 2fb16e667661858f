"""What the IRC commands share (``commands.py``, ``commands_query.py``): the network a command
names and the sender's own connection to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridgekit import BAD_ARGUMENTS, NOT_FOUND, BridgeContext, CommandContext, CommandReply, MatrixError
from bridges.irc.channel_keys import ChannelKeys
from bridges.irc.network import IrcNetwork
from bridges.irc.replies import ReplyWaiters
from bridges.irc.session import IrcSession


@dataclass(frozen=True)
class NetworkTools:
    """What the commands use of one network (its connector makes it)."""

    ctx: BridgeContext
    network: IrcNetwork
    keys: ChannelKeys
    replies: ReplyWaiters
    bot: Callable[[], IrcSession | None]
    """The bot's session now (None while it is not connected)."""
    virtual_users: bool


NetworkLookup = Callable[[str], NetworkTools | None]
"""network name -> its tools (None: no such IRC network here)."""


@dataclass(frozen=True)
class Asked:
    """A command's network and arguments after the network, once both are checked."""

    tools: NetworkTools
    args: list[str]


def find_network(
lookup: NetworkLookup, names: Callable[[], list[str]], args: list[str], usage: str, counts: range,
) -> Asked | CommandReply:
    """The network ``args[0]`` names and the rest, or the reply that says what is wrong."""
    known = ", ".join(sorted(names())) or "none"
    if not args or len(args) - 1 not in counts:
        return CommandReply(f"Usage: {usage} (networks: {known}).", errcode=BAD_ARGUMENTS)
    tools = lookup(args[0])
    if tools is None:
        return CommandReply(f"There is no IRC network '{args[0]}' here (networks: {known}).", errcode=NOT_FOUND)
    return Asked(tools, args[1:])


def _sessions(context: CommandContext) -> Any:
    return getattr(context.services, "sessions", None)


def existing_connection(context: CommandContext, tools: NetworkTools) -> IrcSession | None:
    """The sender's connection to the network if they have one (their login's first)."""
    sessions, name = _sessions(context), tools.network.name
    if sessions is None:
        return None
    for session in (sessions.puppet(name, context.sender), sessions.existing_virtual(name, context.sender)):
        if isinstance(session, IrcSession):
            return session
    return None


async def connection_of(context: CommandContext, tools: NetworkTools) -> IrcSession:
    """The sender's connection, opened (as their virtual connection, through the core, which
    closes it when idle) when they have none."""
    existing = existing_connection(context, tools)
    if existing is not None:
        if not existing.link.connected:
            await existing.reconnect()
        return existing
    sessions = _sessions(context)
    session = await sessions.virtual(tools.network.name, context.sender, await display_name(tools.ctx, context))
    assert isinstance(session, IrcSession)
    return session


async def display_name(ctx: BridgeContext, context: CommandContext) -> str:
    """The sender's display name in the room the command came from (their nick is made of it, as
    when they first speak in a portal), else their localpart."""
    try:
        member = await ctx.matrix.intent(ctx.bot_user_id).get_state_event(context.room_id, "m.room.member",
                                                                           context.sender)
    except MatrixError:
        member = {}
    name = member.get("displayname")
    return name if isinstance(name, str) and name else context.sender.split(":", 1)[0].lstrip("@")


__all__ = [
    "Asked", "NetworkLookup", "NetworkTools", "connection_of", "display_name", "existing_connection", "find_network",
]
