"""The management-room commands IRC people expect: ``join``, ``part``, ``msg``, ``quit``, ``raw``,
``listrooms`` here; ``whois``, ``names``, ``topic`` and ``mode`` in ``commands_query.py``.

Each takes ``<network>`` first and is registered once for all of a bridge's IRC networks (as
``nick`` is, see ``directory.py``): the handler finds that network's :class:`NetworkTools`. A
command acts through the sender's own connection to the network (their login's, else their
virtual connection, opened when needed), so IRC sees them, not the bridge, do it; ``raw`` is for
bridge admins only. Every line is built in ``lines.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bridgekit import (
    BAD_ARGUMENTS,
    NOT_FOUND,
    REFUSED,
    BridgeContext,
    ChatID,
    Command,
    CommandContext,
    CommandHandler,
    CommandReply,
    MatrixError,
    PermissionLevel,
    RemoteUserID,
    RoomAlias,
    RoomID,
    UserID,
)
from bridges.irc import lines
from bridges.irc.channel_join import bot_in, join_channel
from bridges.irc.channel_keys import key_problem
from bridges.irc.command_tools import NetworkLookup, NetworkTools, connection_of, existing_connection, find_network
from bridges.irc.commands_query import QueryCommands
from bridges.irc.network import IrcNetwork
from bridges.irc.output_gate import IRC_LINE_BYTES, one_line, sanitize
from bridges.irc.session import PART_REASON_BYTES


class IrcCommands:
    """The commands, for every network ``lookup`` finds; ``names`` lists them for the replies."""

    def __init__(self, lookup: NetworkLookup, names: Callable[[], list[str]]) -> None:
        self.lookup = lookup
        self.names = names

    def commands(self) -> list[Command]:
        user = PermissionLevel.USER
        own: list[tuple[str, str, str, CommandHandler, PermissionLevel]] = [
            ("join", "Join an IRC channel (with its key, if it has one) and get its room", "<network> #channel [key]",
             self._join, user),
            ("part", "Leave an IRC channel with your connection", "<network> #channel [reason]", self._part, user),
            ("msg", "Send a private message to an IRC nick (opens a room with them)", "<network> <nick> <text>",
             self._msg, user),
            ("quit", "Close your connection to an IRC network", "<network>", self._quit, user),
            ("raw", "Send one raw IRC line through your connection (bridge admins)", "<network> <line>", self._raw,
             PermissionLevel.ADMIN),
            ("listrooms", "List the rooms bridged to an IRC network's channels", "<network>", self._listrooms, user),
            *QueryCommands(self.lookup, self.names).entries(),
        ]
        return [Command(name, summary, handler, usage=usage, level=level)
                for name, summary, usage, handler, level in own]

    # ---- join, part, msg, quit ---------------------------------------------------------------

    async def _join(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "join <network> #channel [key]", range(1, 3))
        if isinstance(asked, CommandReply):  # its words may hold a key: redacted all the same
            return dataclasses.replace(asked, redact_message=len(args) > 2)
        tools, (channel, *key) = asked.tools, asked.args
        network = tools.network
        problem = network.grammar.channel_problem(channel)
        if problem is not None:
            return CommandReply(f"{channel!r} is not a channel on {network.name}: {problem}.", errcode=BAD_ARGUMENTS)
        problem = key_problem(key[0]) if key else None
        if problem is not None:
            return CommandReply(f"That key cannot be used: {problem}.", errcode=BAD_ARGUMENTS, redact_message=True)
        chat = network.fold(channel)
        network.channel(channel)
        session = await connection_of(context, tools) if tools.virtual_users else tools.bot()
        if session is None:
            return CommandReply(f"There is no connection to {network.name} now.", errcode=NOT_FOUND,
                                redact_message=bool(key))
        joined = await join_channel(session, tools, chat, key[0] if key else None)
        if joined.refused is not None:
            return CommandReply(f"{network.name} did not let {session.nick} into {channel}: {joined.refused}.",
                                errcode=REFUSED, redact_message=bool(key))
        bot_in(tools, chat)
        said = [f"{session.nick} is in {channel} on {network.name}.",
                await invite_to_portal(tools, chat, context.sender)]
        if key and joined.key_kept:
            said.append("Its key is kept (encrypted) for every later join.")
        elif key:
            said.append("The key is not kept: " + ("the bridge has no credentials key." if not tools.keys.can_keep
                                                   else "it was not checked (the connection was in already)."))
        return CommandReply(" ".join(said), redact_message=bool(key))

    async def _part(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "part <network> #channel [reason]", range(1, 100))
        if isinstance(asked, CommandReply):
            return asked
        tools, channel, reason = asked.tools, asked.args[0], " ".join(asked.args[1:])
        chat = tools.network.fold(channel)
        session = existing_connection(context, tools)
        if session is None or chat not in session.joined:
            return CommandReply(f"Your connection to {tools.network.name} is not in {channel}.", errcode=NOT_FOUND)
        await session.leave_chat(chat, one_line(reason, PART_REASON_BYTES) or None)
        return CommandReply(f"You left {channel} on {tools.network.name}.")

    async def _msg(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "msg <network> <nick> <text>", range(2, 10_000))
        if isinstance(asked, CommandReply):
            return asked
        tools, nick, text = asked.tools, asked.args[0], " ".join(asked.args[1:])
        network = tools.network
        problem = network.grammar.nick_problem(nick)
        if problem is not None:
            return CommandReply(f"{nick!r} is not a nick on {network.name}: {problem}.", errcode=BAD_ARGUMENTS)
        if not tools.virtual_users and existing_connection(context, tools) is None:
            return CommandReply(f"{network.name} relays through its bot: you have no connection of your own to "
                                "send a private message from.", errcode=REFUSED)
        folded = network.fold(nick)
        network.known.saw(nick)
        chat = ChatID(network.pm_chat(context.sender, folded))
        room = await tools.ctx.open_dm(chat, RemoteUserID(folded), context.sender, sender_name=nick)
        session = await connection_of(context, tools)
        await session.say(chat, text)
        return CommandReply(f"Sent to {nick} on {network.name}; your conversation with them is in room {room}.")

    async def _quit(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "quit <network>", range(0, 1))
        if isinstance(asked, CommandReply):
            return asked
        session = existing_connection(context, asked.tools)
        name = asked.tools.network.name
        if session is None or not session.link.connected:
            return CommandReply(f"You have no open connection to {name}.", errcode=NOT_FOUND)
        await session.close()
        return CommandReply(f"Your connection to {name} is closed. It opens again when you next speak in one "
                            "of its rooms or use a command that needs it.")

    # ---- raw, listrooms ------------------------------------------------------------------------

    async def _raw(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "raw <network> <line>", range(1, 10_000))
        if isinstance(asked, CommandReply):
            return asked
        text = " ".join(asked.args)
        if sanitize(text) != text or len(text.encode("utf-8")) > IRC_LINE_BYTES - 2:
            return CommandReply("A raw line is one line of at most 510 bytes, without control characters.",
                                errcode=BAD_ARGUMENTS)
        try:
            line = lines.raw(text)
        except ValueError as error:
            return CommandReply(f"That is not an IRC line: {error}.", errcode=BAD_ARGUMENTS)
        session = await connection_of(context, asked.tools) if asked.tools.virtual_users else asked.tools.bot()
        if session is None:
            return CommandReply(f"There is no connection to {asked.tools.network.name} now.", errcode=NOT_FOUND)
        session.link.send(line)
        return CommandReply(f"Sent to {asked.tools.network.name} as {session.nick}: {line.command}.")

    async def _listrooms(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self.lookup, self.names, args, "listrooms <network>", range(0, 1))
        if isinstance(asked, CommandReply):
            return asked
        tools = asked.tools
        network, ctx, bot = tools.network, tools.ctx, tools.bot()
        shown = []
        for chat in sorted(await ctx.portal_chats()):
            if chat.startswith("pm:"):
                continue
            state = bot.link.state.channels.get(chat) if bot is not None else None
            if state is not None and "s" in state.modes and context.level < PermissionLevel.ADMIN:
                continue  # a secret channel (+s) is not listed to everyone
            shown.append(f"  {network.channel_name(chat)}: {portal_alias(ctx, network, chat)}")
        if not shown:
            return CommandReply(f"No channel of {network.name} is bridged yet.")
        return CommandReply(f"Channels of {network.name} bridged to rooms:\n" + "\n".join(shown))


def portal_alias(ctx: BridgeContext, network: IrcNetwork, chat: str) -> str:
    return f"#{ctx.alias_prefix}{chat}:{ctx.server_name}"


async def invite_to_portal(tools: NetworkTools, chat: str, user: UserID) -> str:
    """Make sure the channel has a portal (the bot resolves its alias, which makes one) and
    invite ``user`` there; says what happened."""
    ctx = tools.ctx
    alias = portal_alias(ctx, tools.network, chat)
    bot = ctx.matrix.intent(ctx.bot_user_id)
    try:
        room = await bot.join(RoomAlias(alias))
    except MatrixError as error:
        ctx.log.warning("%s: making the portal of %s failed: %s", tools.network.name, chat, error)
        return f"Its room could not be made now ({type(error).__name__}); join {alias} later."
    try:
        await bot.invite(RoomID(room), user)
    except MatrixError:
        return f"Its room is {alias} (you are in it already, or join it there)."
    return f"You are invited to its room, {alias}."


__all__ = ["IrcCommands"]
