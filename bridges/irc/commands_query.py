"""``whois``, ``names``, ``topic`` and ``mode``: the commands that ask the server something and
answer in the room (see ``commands.py`` for how commands find their network and connection).

The server's answer is collected by ``replies.py`` (its numerics, up to the one that ends it,
bounded in time) and shown as plain text, stripped of IRC formatting and control characters.
``mode`` goes out only from a connection that is a channel operator, and its parameters are
checked so that no mask bans everyone or every Matrix user at once.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence

import irc.client

from bridgekit import BAD_ARGUMENTS, NOT_FOUND, REFUSED, CommandContext, CommandHandler, CommandReply, PermissionLevel
from bridges.irc import lines
from bridges.irc.command_tools import NetworkLookup, NetworkTools, connection_of, existing_connection, find_network
from bridges.irc.formatting import strip_formatting
from bridges.irc.output_gate import sanitize
from bridges.irc.replies import argument
from bridges.irc.session import IrcSession

WHOIS_PARTS = frozenset({"whoisuser", "whoisserver", "whoisidle", "whoischannels", "whoisaccount", "whoisoperator",
                         "away"})
WHOIS_ENDS = frozenset({"endofwhois", "nosuchnick"})
NAMES_PARTS = frozenset({"namreply"})
NAMES_ENDS = frozenset({"endofnames", "nosuchchannel"})
TOPIC_PARTS = frozenset({"currenttopic"})
TOPIC_ENDS = frozenset({"topicinfo", "notopic", "nosuchchannel", "notonchannel"})
OPERATOR_MODES = frozenset("oqa")
"""Prefix modes that make a member a channel operator (``@``, and founder/admin where offered)."""
_MODES = re.compile(r"^[+-][A-Za-z]+(?:[+-][A-Za-z]+)*$")
_MASK_NOISE = frozenset("*?!@.")
MIN_MASK_CHARACTERS = 3
MAX_MODE_PARAM = 100


def shown(text: str) -> str:
    """IRC text made safe and plain for a Matrix notice (one line, no formatting codes)."""
    return " ".join(strip_formatting(sanitize(text)).split())


def mode_problem(modes: str, params: Sequence[str], bridge_hosts: set[str]) -> str | None:
    """Why ``MODE #chan modes params...`` is refused (None: it may go out). The modes are
    letters after ``+``/``-``; a parameter is one word; a mask (with ``*``, ``?``, ``!`` or ``@``)
    must name someone: at least three characters besides wildcards and separators, and not the
    bridge's own host with any ident (which would ban every Matrix user)."""
    if not _MODES.match(modes) or len(modes) > 20:
        return "modes are letters after + or -, such as +o or -v+b"
    for param in params:
        if not param or len(param) > MAX_MODE_PARAM or param.startswith(":") or "," in param or shown(param) != param:
            return f"{param!r} is not a mode parameter"
        if not any(c in param for c in "*?!@"):
            continue
        if sum(1 for c in param if c not in _MASK_NOISE) < MIN_MASK_CHARACTERS:
            return f"the mask {param} would match almost everyone"
        nick, _, rest = param.partition("!")
        ident, _, host = rest.rpartition("@")
        if host.lower() in bridge_hosts and set(nick + ident) <= set("*?"):
            return f"the mask {param} is the bridge's own host: it would match every Matrix user"
    return None


class QueryCommands:
    def __init__(self, lookup: NetworkLookup, names: Callable[[], list[str]]) -> None:
        self._lookup = lookup
        self._networks = names

    def entries(self) -> list[tuple[str, str, str, CommandHandler, PermissionLevel]]:
        user = PermissionLevel.USER
        return [
            ("whois", "Show who an IRC nick is (host, realname, channels, account, idle)", "<network> <nick>",
             self._whois, user),
            ("names", "List who is in an IRC channel", "<network> #channel", self._names, user),
            ("topic", "Show an IRC channel's topic, or set it", "<network> #channel [new topic]", self._topic, user),
            ("mode", "Set an IRC channel's modes (you must be its operator on IRC)", "<network> #channel <modes...>",
             self._mode, user),
        ]

    def _asker(self, context: CommandContext, tools: NetworkTools) -> IrcSession | None:
        """Who asks the server: the sender's connection when they have one, else the bot."""
        session = existing_connection(context, tools)
        return session if session is not None and session.link.connected else tools.bot()

    async def _whois(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self._lookup, self._networks, args, "whois <network> <nick>", range(1, 2))
        if isinstance(asked, CommandReply):
            return asked
        tools, nick = asked.tools, asked.args[0]
        network = tools.network
        if not network.grammar.is_nick(nick):
            return CommandReply(f"{nick!r} is not a nick on {network.name}.", errcode=BAD_ARGUMENTS)
        session = self._asker(context, tools)
        if session is None:
            return CommandReply(f"There is no connection to {network.name} now.", errcode=NOT_FOUND)
        folded = network.fold(nick)
        heard = await tools.replies.ask(
            session.link, lambda: session.link.send(lines.whois(nick)), kinds=WHOIS_PARTS, ends=WHOIS_ENDS,
            about=lambda event: network.fold(argument(event, 0)) == folded,
        )
        return CommandReply(describe_whois(network.name, nick, heard))

    async def _names(self, context: CommandContext, args: list[str]) -> CommandReply:
        asked = find_network(self._lookup, self._networks, args, "names <network> #channel", range(1, 2))
        if isinstance(asked, CommandReply):
            return asked
        tools, channel = asked.tools, asked.args[0]
        network = tools.network
        if not network.grammar.is_channel(channel):
            return CommandReply(f"{channel!r} is not a channel on {network.name}.", errcode=BAD_ARGUMENTS)
        session = self._asker(context, tools)
        if session is None:
            return CommandReply(f"There is no connection to {network.name} now.", errcode=NOT_FOUND)
        chat = network.fold(channel)
        heard = await tools.replies.ask(
            session.link, lambda: session.link.send(lines.names(channel)), kinds=NAMES_PARTS, ends=NAMES_ENDS,
            about=lambda event: network.fold(argument(event, 1 if event.type == "namreply" else 0)) == chat,
        )
        people = [shown(name).split("!")[0] for event in heard if event.type == "namreply"
                  for name in argument(event, 2).split()]
        if not people:
            return CommandReply(f"Nobody is in {channel} on {network.name}, or the server does not say.")
        return CommandReply(f"{len(people)} in {channel} on {network.name}: {' '.join(sorted(people, key=str.lower))}")

    async def _topic(self, context: CommandContext, args: list[str]) -> CommandReply:
        usage = "topic <network> #channel [new topic]"
        asked = find_network(self._lookup, self._networks, args, usage, range(1, 10_000))
        if isinstance(asked, CommandReply):
            return asked
        tools, channel, new = asked.tools, asked.args[0], " ".join(asked.args[1:])
        network = tools.network
        if not network.grammar.is_channel(channel):
            return CommandReply(f"{channel!r} is not a channel on {network.name}.", errcode=BAD_ARGUMENTS)
        chat = network.fold(channel)
        if new:
            if not tools.virtual_users:
                return CommandReply(f"{network.name} relays through its bot: set the topic in the channel's room.",
                                    errcode=REFUSED)
            network.channel(channel)
            await (await connection_of(context, tools)).set_topic(chat, new)
            return CommandReply(f"Asked {network.name} to set the topic of {channel}.")
        session = self._asker(context, tools)
        if session is None:
            return CommandReply(f"There is no connection to {network.name} now.", errcode=NOT_FOUND)
        heard = await tools.replies.ask(
            session.link, lambda: session.link.send(lines.topic_query(channel)), kinds=TOPIC_PARTS, ends=TOPIC_ENDS,
            about=lambda event: network.fold(argument(event, 0)) == chat,
        )
        topic = next((shown(argument(event, 1)) for event in heard if event.type == "currenttopic"), "")
        setter = next((event for event in heard if event.type == "topicinfo"), None)
        if not topic:
            return CommandReply(f"{channel} on {network.name} has no topic (or the server does not say it).")
        by = f" (set by {shown(argument(setter, 1)).split('!')[0]})" if setter is not None else ""
        return CommandReply(f"The topic of {channel} on {network.name}{by}: {topic}")

    async def _mode(self, context: CommandContext, args: list[str]) -> CommandReply:
        usage = "mode <network> #channel <modes> [params...]"
        asked = find_network(self._lookup, self._networks, args, usage, range(2, 20))
        if isinstance(asked, CommandReply):
            return asked
        tools, (channel, modes, *params) = asked.tools, asked.args
        network = tools.network
        if not network.grammar.is_channel(channel):
            return CommandReply(f"{channel!r} is not a channel on {network.name}.", errcode=BAD_ARGUMENTS)
        problem = mode_problem(modes, params, network.bridge_identities.hosts)
        if problem is not None:
            return CommandReply(f"Not sent: {problem}.", errcode=BAD_ARGUMENTS)
        session = existing_connection(context, tools)
        state = session.link.state.channels.get(network.fold(channel)) if session is not None else None
        mine = state.prefixes.get(session.link.state.fold(session.nick), set()) if state and session else set()
        if session is None or not mine & OPERATOR_MODES:
            return CommandReply(f"You are not an operator of {channel} on {network.name}: only its operators set "
                                "its modes.", errcode=REFUSED)
        session.link.send(lines.mode(channel, modes, *params))
        return CommandReply(f"Sent MODE {channel} {' '.join([modes, *params])} as {session.nick}.")


def describe_whois(network: str, nick: str, heard: list[irc.client.Event]) -> str:
    """A WHOIS answer, one fact a line."""
    facts = {event.type: [shown(str(a)) for a in event.arguments] for event in heard}
    if "whoisuser" not in facts:
        return f"Nobody is {nick} on {network} now."
    user = facts["whoisuser"]  # [nick, user, host, "*", realname]
    said = [f"{user[0]}!{user[1]}@{user[2]} ({user[4] if len(user) > 4 else ''})"]
    if "whoisaccount" in facts and len(facts["whoisaccount"]) > 1:
        said.append(f"account: {facts['whoisaccount'][1]} (logged in)")
    if "whoischannels" in facts and len(facts["whoischannels"]) > 1:
        said.append(f"channels: {facts['whoischannels'][1]}")
    if "whoisserver" in facts and len(facts["whoisserver"]) > 2:
        said.append(f"server: {facts['whoisserver'][1]} ({facts['whoisserver'][2]})")
    if "whoisoperator" in facts:
        said.append("an IRC operator")
    if "away" in facts and len(facts["away"]) > 1:
        said.append(f"away: {facts['away'][1]}")
    idle = facts.get("whoisidle", [])
    if len(idle) > 2 and idle[1].isdigit() and idle[2].isdigit():
        since = datetime.datetime.fromtimestamp(int(idle[2]), datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        said.append(f"idle: {_duration(int(idle[1]))}, connected since {since}")
    return f"{nick} on {network}:\n" + "\n".join(f"  {line}" for line in said)


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


__all__ = ["QueryCommands", "describe_whois", "mode_problem", "shown"]
