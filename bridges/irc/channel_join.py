"""The ``join`` command's JOIN: sent from a connection and answered by the server, so that a
key is kept only once the server let the connection in with it (a mistyped, or malicious, key
never replaces the one that works, and the bot's later rejoins keep working)."""

from __future__ import annotations

from dataclasses import dataclass

import irc.client

from bridges.irc import lines
from bridges.irc.command_tools import NetworkTools
from bridges.irc.commands_query import shown
from bridges.irc.refusals import REFUSALS
from bridges.irc.replies import argument
from bridges.irc.session import IrcSession

JOIN_REFUSED = frozenset({*REFUSALS, "nosuchchannel", "toomanychannels", "badchanmask"}) - {"cannotsendtochan",
                                                                                            "nosuchnick"}


@dataclass(frozen=True)
class Joined:
    refused: str | None = None
    """Why the server did not let the connection in (None: it is in)."""
    key_kept: bool = False


async def join_channel(session: IrcSession, tools: NetworkTools, chat: str, key: str | None) -> Joined:
    """``session``'s connection joins ``chat`` (with ``key``, else the key kept for it, if any);
    the key is kept once the server says the connection is in."""
    network, link = tools.network, session.link
    channel = network.channel_name(chat)
    present = link.state.channels.get(chat)
    if present is not None:
        session.joined.add(chat)
        # In already: a key given now is kept only when it is the one the channel is known to have.
        fits = key is not None and present.modes.get("k") == key
        return Joined(key_kept=await tools.keys.remember(chat, key) if fits and key else False)

    def answers(event: irc.client.Event) -> bool:
        where = str(event.target) if event.type == "join" else argument(event, 0)
        return network.fold(where) == chat and (event.type != "join" or link.state.is_own(event.source))

    line = lines.join(channel, key) if key else network.join_line(chat)
    heard = await tools.replies.ask(link, lambda: link.send(line), kinds=frozenset(),
                                    ends=frozenset({"join"}) | JOIN_REFUSED, about=answers)
    if not heard:
        return Joined(refused="the server did not answer")
    if heard[-1].type != "join":
        said = shown(argument(heard[-1], 1))
        reason = REFUSALS.get(heard[-1].type, heard[-1].type)
        return Joined(refused=f"{reason}" + (f' (the server says "{said[:200]}")' if said else ""))
    session.joined.add(chat)
    return Joined(key_kept=await tools.keys.remember(chat, key) if key else False)


def bot_in(tools: NetworkTools, chat: str) -> None:
    """The bot joins ``chat`` if it is bridged and the bot is not in it (its JOIN failed for want
    of the key a user has just given): it is the one that hears the channel for its room."""
    bot = tools.bot()
    if bot is None or not bot.link.connected or chat not in tools.network.portals:
        return
    if chat not in bot.link.state.channels:
        bot.link.send(tools.network.join_line(chat))
        bot.joined.add(chat)


__all__ = ["JOIN_REFUSED", "Joined", "bot_in", "join_channel"]
