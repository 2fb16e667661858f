"""IRC -> Matrix moderation a portal follows: bans of bridged Matrix users (``ban_mirror.py``) and
the channel's ``+i`` / ``+k`` / ``+s`` as the portal's join rule and directory listing
(``channel_modes.py``). The decisions are pure and made there; this does the Matrix side, as the
bridge's bot (which holds the portal's power).

Nothing here is sent back to IRC: a Matrix ban of a Matrix user, or a join-rule change, is not
turned into a mode, so what the bridge sets on Matrix cannot bounce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from bridgekit import BridgeContext, ChatID, MatrixError, RoomID, UserID
from bridges.irc.ban_mirror import Connection, mirror_ban
from bridges.irc.channel_modes import ModeChange, PortalAccess, portal_access
from bridges.irc.inbound import ChannelModes
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords
from bridges.irc.session import IrcSession

log = logging.getLogger(__name__)

ACCESS_MODES = "iks"
"""The channel modes the portal's join rule and directory listing follow."""


class PortalModeration:
    """One network's portals; ``connections`` lists the bridge's connections now (bot first)."""

    def __init__(
        self, ctx: BridgeContext, network: IrcNetwork, records: IrcRecords,
        connections: Callable[[], Iterable[IrcSession]],
    ) -> None:
        self._ctx = ctx
        self._network = network
        self._records = records
        self._connections = connections
        self._modes: dict[str, dict[str, str]] = {}
        """chat -> the channel's access modes (``i``, ``k``, ``s``) as the bot last heard them."""
        self._applied: dict[str, PortalAccess] = {}

    async def changed(self, modes: ChannelModes) -> None:
        known = self._modes.setdefault(modes.chat, {})
        if modes.complete:
            known.clear()
        for change in modes.changes:
            if change.mode == "b" and change.param and modes.setter is not None:
                await self._ban(modes.chat, modes.setter, change)
            elif change.mode in ACCESS_MODES:
                if change.adding:
                    known[change.mode] = change.param or ""
                else:
                    known.pop(change.mode, None)
        if modes.complete or any(change.mode in ACCESS_MODES for change in modes.changes):
            await self._follow_access(modes.chat, portal_access(known))

    # ---- bans ----------------------------------------------------------------------------------

    def bridge_connections(self) -> list[Connection]:
        network = self._network
        found = []
        for session in self._connections():
            seen = network.known.get(network.fold(session.nick))
            idents = tuple(i for i in (session.link.ident, seen.ident if seen else None) if i)
            hosts = (seen.host,) if seen is not None and seen.host else tuple(network.bridge_identities.hosts)
            found.append(Connection(session.owner, session.nick, idents, hosts))
        return found

    async def _ban(self, chat: str, setter: str, change: ModeChange) -> None:
        network, ctx = self._network, self._ctx
        mask = str(change.param)
        key = (chat, network.fold(mask))
        plan = mirror_ban(mask, self.bridge_connections(), fold=network.fold, channel=network.channel_name(chat),
                          setter=setter, adding=change.adding)
        # ``-b`` lifts only a ban the bridge mirrored for that mask: never one a Matrix moderator set.
        user = plan.user if change.adding else await self._mirrored(key, forget=True)
        room = await ctx.room_for_chat(ChatID(chat))
        if room is None:
            return
        bot = ctx.matrix.intent(ctx.bot_user_id)
        try:
            if user is not None and change.adding:
                await self._records.set(_ban_key(key), str(user))
                await bot.ban(room, user, reason=f"banned on IRC by {setter} ({mask})")
            elif user is not None:
                await bot.unban(room, user, reason=f"ban lifted on IRC by {setter} ({mask})")
            elif plan.notice is not None:
                txn = f"irc-ban:{chat}:{network.change_id()}"
                await bot.send_text(room, plan.notice, msgtype="m.notice", txn_id=txn)
        except MatrixError as error:
            log.info("%s: mirroring %sb %s in %s failed: %s", network.name, "+" if change.adding else "-", mask,
                     room, error)

    async def _mirrored(self, key: tuple[str, str], *, forget: bool) -> UserID | None:
        user = await self._records.get(_ban_key(key), None)
        if forget and user:
            await self._records.set(_ban_key(key), "")
        return UserID(user) if isinstance(user, str) and user else None

    # ---- join rule and directory ---------------------------------------------------------------

    async def _follow_access(self, chat: str, access: PortalAccess) -> None:
        before = self._applied.get(chat)
        if before == access:
            return
        ctx = self._ctx
        room = await ctx.room_for_chat(ChatID(chat))
        if room is None:
            return
        bot = ctx.matrix.intent(ctx.bot_user_id)
        try:
            current = await bot.get_state(room, "m.room.join_rules")
            if current.get("join_rule") != access.join_rule:
                await bot.send_state(room, "m.room.join_rules", "", {**current, "join_rule": access.join_rule})
            await self._follow_directory(room, chat, access.in_directory)
            self._applied[chat] = access
        except MatrixError as error:
            log.info("%s: the portal %s could not follow the channel's modes: %s", self._network.name, room, error)

    async def _follow_directory(self, room: RoomID, chat: str, listed: bool) -> None:
        """``+s`` takes a listed portal out of the directory, and ``-s`` puts back only a portal
        it took out (one nobody listed stays unlisted); remembered across restarts."""
        bot = self._ctx.matrix.intent(self._ctx.bot_user_id)
        key = f"unlisted:{chat}"
        if not listed and await bot.directory_visibility(room) == "public":
            await bot.set_directory_visibility(room, "private")
            await self._records.set(key, True)
        elif listed and await self._records.get(key, False):
            await bot.set_directory_visibility(room, "public")
            await self._records.set(key, False)


def _ban_key(key: tuple[str, str]) -> str:
    """Records key: the Matrix user a ban of (chat, folded mask) banned from the portal."""
    return f"mirrored-ban:{key[0]}:{key[1]}"


__all__ = ["ACCESS_MODES", "PortalModeration"]
