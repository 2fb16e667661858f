"""A Matrix moderator kicked or banned an IRC user's ghost: what to send on IRC, and what to tell
the moderator (pure; the connector sends).

The ghost's user ID is all the Matrix side gives, and anyone can make up a user ID in the
bridge's namespace (``@_irc_libera_=2a`` unescapes to the nick ``*``). So nothing is sent for a
ghost whose nick is not a nick (:mod:`bridges.irc.grammar`), whose nick the bridge has never seen
on the network (:mod:`bridges.irc.known_users`), or that is one of the bridge's own connections
(a bridged Matrix user: ban them on Matrix). A ban uses the mask :func:`choose_ban_mask` picks;
when none is safe, the user is kicked without one and the moderator is told why.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any, Protocol

from bridges.irc import lines
from bridges.irc.ban_masks import choose_ban_mask
from bridges.irc.grammar import IrcGrammar
from bridges.irc.known_users import BridgeIdentities, KnownUsers
from bridges.irc.lines import Line

REASON_BYTES = 200


@dataclass(frozen=True)
class ModerationPlan:
    lines: tuple[Line, ...]
    """IRC lines, in order (``MODE ... +b mask``, ``KICK ...``)."""
    notice: str | None = None
    """Said to the moderator in the room when the bridge did less than asked, with the reason."""
    mask: str | None = None
    """The ban mask set, remembered so that a Matrix unban lifts it (:class:`BanRecords`)."""


@dataclass(frozen=True)
class ModerationRequest:
    network: str
    channel: str
    folded_nick: str
    ban: bool
    reason: str
    """One line already (see :func:`bridges.irc.output_gate.one_line`)."""


def plan_moderation(
    request: ModerationRequest, *, grammar: IrcGrammar, known: KnownUsers, own_nicks: Container[str],
    bridge: BridgeIdentities,
) -> ModerationPlan:
    """What to do on IRC for ``request`` (see the module docstring)."""
    network, channel, what = request.network, request.channel, "ban" if request.ban else "kick"
    seen = known.get(request.folded_nick)
    shown = seen.nick if seen is not None else request.folded_nick
    problem = grammar.nick_problem(shown)
    if problem is not None:
        return ModerationPlan((), f"Nothing was done on {network}: {shown!r} is not an IRC nick ({problem}).")
    if grammar.channel_problem(channel) is not None:
        return ModerationPlan((), f"Nothing was done on {network}: {channel!r} is not a channel there.")
    if seen is None:
        return ModerationPlan((), (
            f"Nothing was done on {network}: the bridge has not seen anyone called {shown} there, so it "
            f"will not {what} that name on IRC."
        ))
    if request.folded_nick in own_nicks:
        return ModerationPlan((), (
            f"Nothing was done on {network}: {shown} is a Matrix user's own connection through this bridge; "
            f"{what} the Matrix user instead."
        ))
    kick = lines.kick(channel, seen.nick, request.reason)
    if not request.ban:
        return ModerationPlan((kick,))
    choice = choose_ban_mask(seen, bridge)
    if choice.mask is None:
        return ModerationPlan((kick,), (
            f"{seen.nick} was kicked from {channel} on {network}, but no IRC ban was set: {choice.reason}. "
            "They can join again; a channel operator can ban them by hand."
        ))
    return ModerationPlan((lines.mode(channel, "+b", choice.mask), kick), mask=choice.mask)


class BanRecords:
    """The masks Matrix bans set, per channel and nick, kept across restarts: a Matrix unban of
    the ghost lifts the same mask (``-b``), never one it would have to guess."""

    def __init__(self, records: Records) -> None:
        self._records = records

    async def remember(self, chat: str, folded_nick: str, mask: str | None) -> None:
        if mask is not None:
            await self._records.set(f"ban:{chat}:{folded_nick}", mask)

    async def unban_lines(self, chat: str, channel: str, folded_nick: str) -> list[Line]:
        mask = await self._records.get(f"ban:{chat}:{folded_nick}", None)
        if not isinstance(mask, str) or not mask:
            return []
        await self._records.set(f"ban:{chat}:{folded_nick}", "")
        return [lines.mode(channel, "-b", mask)]


class Records(Protocol):
    """Where :class:`BanRecords` keeps masks (``records.IrcRecords``)."""

    async def get(self, key: str, default: Any) -> Any: ...

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None: ...


__all__ = ["BanRecords", "ModerationPlan", "ModerationRequest", "plan_moderation"]
