"""Power levels and op/voice, one table both ways (``+o`` 50, ``+h`` 25, ``+v`` 10).

IRC -> Matrix is in ``inbound.py`` (a mode given to a ghost, or to a Matrix user's own
connection, becomes that level). Matrix -> IRC is here: when a Matrix user's level in a portal
changes and they have a connection of their own on the network (virtual or logged in), the bot
gives it the mode the table puts at or below the new level and takes the table's other modes
away, in one MODE line (the server ignores a mode the nick already has, or lacks, and tells no one).

No flapping: only users whose level this event changed are touched; the bot's MODE comes back to
the bot, which ``inbound.py`` does not turn into power (the bridge made it); the power level the
core sets for an IRC op's change is the bot's own event, which the core does not hand back to the
connector. So a level the table has no mode for (60, 40) stays as the Matrix side set it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bridgekit import BridgeContext, ChatID, MatrixError, MatrixEvent, RoomID, UserID, power_level_value
from bridges.irc import lines
from bridges.irc.lines import Line
from bridges.irc.network import IrcNetwork
from bridges.irc.session import IrcSession

log = logging.getLogger(__name__)

POWER_FOR_MODE: Mapping[str, int] = {"o": 50, "h": 25, "v": 10}
"""The one table, both ways."""


def mode_for_level(level: int, available: str) -> str | None:
    """The table's highest mode the server has (``available``: ISUPPORT PREFIX's) at or below ``level``."""
    fitting = [(power, mode) for mode, power in POWER_FOR_MODE.items() if mode in available and power <= level]
    return max(fitting)[1] if fitting else None


def levels_changed(content: Mapping[str, object], previous: Mapping[str, object] | None) -> dict[str, int]:
    """Users whose level ``content`` (``m.room.power_levels``) changed from ``previous``'s: user -> new level."""
    now, before = _levels(content), _levels(previous or {})
    default_now = power_level_value(content.get("users_default"), 0)
    default_before = power_level_value((previous or {}).get("users_default"), 0)
    changed = {}
    for user in now.keys() | before.keys():
        level = now.get(user, default_now)
        if level != before.get(user, default_before):
            changed[user] = level
    return changed


def mode_line(channel: str, nick: str, level: int, available: str) -> Line:
    """``MODE #chan +o-hv nick nick nick``: the mode for ``level``, and none of the table's others."""
    wanted = mode_for_level(level, available)
    others = [mode for mode in POWER_FOR_MODE if mode in available and mode != wanted]
    modes = (f"+{wanted}" if wanted else "") + ("-" + "".join(others) if others else "")
    return lines.mode(channel, modes, *[nick] * (len(others) + (1 if wanted else 0)))


def _operator_in(bot: IrcSession, chat: str) -> str | None:
    """The channel's name when the bot is an operator there (it may give modes), else None."""
    state = bot.link.state
    channel = state.channels.get(chat)
    if channel is None or "o" not in channel.prefixes.get(state.fold(bot.nick), set()):
        return None
    return channel.name


def _levels(content: Mapping[str, object]) -> dict[str, int]:
    users = content.get("users")
    if not isinstance(users, Mapping):
        return {}
    return {str(user): power_level_value(level, 0) for user, level in users.items()}


class PowerModes:
    """Matrix -> IRC for one network; ``bot`` and ``own_session`` read the connector's sessions."""

    def __init__(
        self, ctx: BridgeContext, network: IrcNetwork, bot: Callable[[], IrcSession | None],
        own_session: Callable[[UserID], IrcSession | None],
    ) -> None:
        self._ctx = ctx
        self._network = network
        self._bot = bot
        self._own_session = own_session

    async def matrix_changed(self, event: MatrixEvent) -> None:
        """A Matrix user changed ``m.room.power_levels`` in a room (maybe a portal)."""
        chat = await self._ctx.chat_for_room(RoomID(event.room_id))
        bot = self._bot()
        if chat is None or chat.startswith("pm:") or bot is None or not bot.link.connected:
            return
        previous = event.unsigned.get("prev_content")
        changed = levels_changed(event.content, previous if isinstance(previous, Mapping) else None)
        sends = [(user, level, session) for user, level in changed.items()
                 if (session := self._own_session(UserID(user))) is not None and chat in session.joined]
        if not sends:
            return
        channel = _operator_in(bot, chat)
        if channel is None:
            await self._tell(event, chat, [user for user, _level, _session in sends])
            return
        available = "".join(bot.link.state.prefix_modes.values())
        for _user, level, session in sends:
            bot.link.send(mode_line(channel, session.nick, level, available))

    async def joined(self, chat: str, user: UserID) -> None:
        """``user``'s own connection joined the channel: it gets the mode their level has now
        (silently nothing when the bot is not an operator: no level changed)."""
        ctx, bot, session = self._ctx, self._bot(), self._own_session(user)
        room = await ctx.room_for_chat(ChatID(chat))
        channel = _operator_in(bot, chat) if bot is not None else None
        if room is None or bot is None or session is None or channel is None:
            return
        try:
            levels = await ctx.matrix.intent(ctx.bot_user_id).get_state(room, "m.room.power_levels")
        except MatrixError as error:
            log.info("%s: could not read the power levels of %s: %s", self._network.name, room, error)
            return
        level = _levels(levels).get(user, power_level_value(levels.get("users_default"), 0))
        available = "".join(bot.link.state.prefix_modes.values())
        if mode_for_level(level, available) is not None:
            bot.link.send(mode_line(channel, session.nick, level, available))

    async def _tell(self, event: MatrixEvent, chat: str, users: list[str]) -> None:
        ctx = self._ctx
        text = (f"The bridge is not a channel operator in {self._network.channel_name(chat)} on {self._network.name}, "
                f"so the power level of {', '.join(users)} was not given there as op or voice.")
        try:
            await ctx.matrix.intent(ctx.bot_user_id).send_text(
                RoomID(event.room_id), text, msgtype="m.notice", txn_id=f"irc-power:{event.event_id}")
        except MatrixError as error:
            log.info("%s: could not say that power was not mirrored in %s: %s", self._network.name, chat, error)


__all__ = ["POWER_FOR_MODE", "PowerModes", "levels_changed", "mode_for_level", "mode_line"]
