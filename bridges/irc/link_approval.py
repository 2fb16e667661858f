"""A channel operator approves linking a room to their channel (the framework's ``LinkApprover``).

When a room admin who is not a bridge admin links a room to a channel, the bridge bot asks the
channel's operators by private message (as matrix-appservice-irc does) and waits, at most the
network's ``link_approval_minutes``. An answer counts only from someone who is an operator of
the channel when they answer (checked then with NAMES, not trusted from when they were asked):
``yes`` links the room, ``no`` refuses; anyone else's answer is told it does not count. The
bridge's own connections are never asked. Nothing is linked on silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import irc.client

from bridgekit import ChatID, RoomID, UserID
from bridges.irc import lines
from bridges.irc.commands_query import NAMES_ENDS, NAMES_PARTS, OPERATOR_MODES
from bridges.irc.network import IrcNetwork
from bridges.irc.output_gate import one_line
from bridges.irc.replies import ReplyWaiters, argument
from bridges.irc.session import IrcSession

YES = frozenset({"yes", "y", "allow", "ok"})
NO = frozenset({"no", "n", "deny", "refuse"})
QUESTION_BYTES = 400
MAX_ASKED = 10
"""Operators asked at most (a channel with a hundred ops need not get a hundred messages)."""


class OperatorApproval:
    def __init__(
        self, network: IrcNetwork, bot: Callable[[], IrcSession | None], replies: ReplyWaiters, minutes: float,
    ) -> None:
        self._network = network
        self._bot = bot
        self._replies = replies
        self._minutes = minutes

    async def approve(self, user: UserID, chat_id: ChatID, room_id: RoomID) -> bool | str:
        network, bot = self._network, self._bot()
        if bot is None or not bot.link.connected:
            return f"the bridge is not connected to {network.name} now, so no operator could be asked"
        channel = network.channel_name(chat_id)
        asked = [nick for nick in await self._operators(bot, channel) if not network.is_ours(nick)][:MAX_ASKED]
        if not asked:
            return f"{channel} has no operator on {network.name} to ask (or its members are hidden)"
        question = one_line(
            f"{user} wants to bridge {channel} to the Matrix room {room_id}. Reply 'yes {channel}' to allow it "
            f"or 'no {channel}' to refuse, within {self._minutes:g} minutes.", QUESTION_BYTES)
        folded_asked = {network.fold(nick) for nick in asked}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._minutes * 60

        def ask() -> None:
            for nick in asked:
                bot.link.send(lines.privmsg(nick, question))

        def is_answer(event: irc.client.Event) -> bool:
            nick = network.fold(str(getattr(event.source, "nick", "") or ""))
            return answer_of(argument(event, 0), network.fold, chat_id, asked=nick in folded_asked) is not None

        question_asked = False
        while (remaining := deadline - loop.time()) > 0:
            heard = await self._replies.ask(bot.link, ask if not question_asked else lambda: None,
                                            kinds=frozenset(), ends=frozenset({"privmsg"}), about=is_answer,
                                            timeout=remaining)
            question_asked = True
            if not heard:
                break
            nick = str(getattr(heard[-1].source, "nick", ""))
            if not await self._is_operator(bot, channel, nick):
                bot.link.send(lines.notice(nick, f"Only an operator of {channel} can answer: yours does not count."))
                continue
            if answer_of(argument(heard[-1], 0), network.fold, chat_id, asked=True):
                bot.link.send(lines.notice(nick, f"Thank you: {channel} is bridged to {room_id} now."))
                return True
            bot.link.send(lines.notice(nick, f"Understood: {channel} is not bridged to {room_id}."))
            return f"{nick}, an operator of {channel}, refused"
        return f"no operator of {channel} answered within {self._minutes:g} minutes"

    async def _names(self, bot: IrcSession, channel: str) -> list[tuple[str, set[str]]]:
        """(nick, prefix modes) of everyone in ``channel``, as NAMES says now."""
        network, link = self._network, bot.link
        chat = network.fold(channel)
        heard = await self._replies.ask(
            link, lambda: link.send(lines.names(channel)), kinds=NAMES_PARTS, ends=NAMES_ENDS,
            about=lambda event: network.fold(argument(event, 1 if event.type == "namreply" else 0)) == chat,
        )
        symbols = link.state.prefix_modes
        members = []
        for entry in (name for event in heard if event.type == "namreply" for name in argument(event, 2).split()):
            modes = set()
            while entry and entry[0] in symbols:
                modes.add(symbols[entry[0]])
                entry = entry[1:]
            members.append((irc.client.NickMask(entry).nick, modes))
        return members

    async def _operators(self, bot: IrcSession, channel: str) -> list[str]:
        return [nick for nick, modes in await self._names(bot, channel) if modes & OPERATOR_MODES]

    async def _is_operator(self, bot: IrcSession, channel: str, nick: str) -> bool:
        folded = self._network.fold(nick)
        return any(self._network.fold(op) == folded for op in await self._operators(bot, channel))


def answer_of(text: str, fold: Callable[[str], str], chat_id: str, *, asked: bool) -> bool | None:
    """True for yes, False for no, None when ``text`` is no answer about ``chat_id``: ``yes
    #chan`` from anyone, a bare ``yes`` only from someone who was ``asked``."""
    words = text.strip().lower().split()
    if not words or words[0] not in YES | NO or len(words) > 2:
        return None
    if len(words) == 2 and fold(words[1]) != chat_id:
        return None
    if len(words) == 1 and not asked:
        return None
    return words[0] in YES


__all__ = ["OperatorApproval", "answer_of"]
