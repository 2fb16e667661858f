"""What the IRC bridge does about Matrix events other than messages in a portal: a direct-chat
invite of a ghost opens a private conversation with that IRC user; a kick or ban of a ghost by a
Matrix moderator becomes KICK and ban on IRC (``moderation.py`` decides what is sent, or refused);
an unban lifts the mask the ban set; power levels become channel modes (``power_modes.py``)."""

from __future__ import annotations

from collections.abc import Callable

from bridgekit import BridgeContext, ChatID, MatrixEvent, RoomID, UserID
from bridges.irc.moderation import REASON_BYTES, BanRecords, ModerationRequest, plan_moderation
from bridges.irc.network import IrcNetwork
from bridges.irc.output_gate import one_line
from bridges.irc.power_modes import PowerModes
from bridges.irc.session import IrcSession


class MatrixSideEvents:
    def __init__(
        self, ctx: BridgeContext, network: IrcNetwork, bans: BanRecords, power: PowerModes,
        acting_for: Callable[[UserID], IrcSession | None],
    ) -> None:
        """``acting_for``: the connection a Matrix moderator acts through (their own, else the bot's)."""
        self._ctx = ctx
        self._network = network
        self._bans = bans
        self._power = power
        self._acting_for = acting_for

    async def handle(self, event: MatrixEvent) -> None:
        ctx = self._ctx
        if event.type == "m.room.power_levels":
            await self._power.matrix_changed(event)  # power levels -> op/voice (``power_modes.py``)
        if event.type != "m.room.member" or event.state_key is None:
            return
        folded = ctx.sender_of_ghost(event.state_key)
        if folded is None:
            return
        membership = event.content.get("membership")
        if membership in ("leave", "ban") and event.sender != event.state_key:
            await self._moderate(event, folded, ban=membership == "ban")
            return
        if membership != "invite" or event.content.get("is_direct") is not True:
            return
        user = UserID(event.sender)
        problem = self._network.grammar.nick_problem(self._network.nick_as_written(folded))
        if problem is not None:
            # The ghost's ID was made up: a private chat with it would message whatever it names.
            await ctx.tell_user(user, f"{event.state_key} is no one on {self._network.name}: {problem}.")
            return
        ghost = ctx.matrix.intent(UserID(event.state_key))
        await ghost.ensure_registered()
        await ghost.join(RoomID(event.room_id))
        await ctx.link_portal(ChatID(self._network.pm_chat(user, folded)), RoomID(event.room_id), relay=False)

    async def _moderate(self, event: MatrixEvent, folded: str, *, ban: bool) -> None:
        """A Matrix moderator kicked or banned an IRC user's ghost: do the same on IRC, as the
        moderator's own connection when they have one (the network then shows who did it),
        else as the bridge bot. What is sent, or refused, is decided in ``moderation.py``; when
        the bridge did less than asked, the moderator is told in the room."""
        ctx, network = self._ctx, self._network
        chat = await ctx.chat_for_room(RoomID(event.room_id))
        if chat is None or chat.startswith("pm:"):
            return
        previous = event.unsigned.get("prev_content")
        session = self._acting_for(UserID(event.sender))
        if session is None:
            return
        if not ban and isinstance(previous, dict) and previous.get("membership") == "ban":
            # An unban on Matrix: nobody is kicked; the mask the ban set (if any) is lifted.
            for line in await self._bans.unban_lines(chat, network.channel_name(chat), folded):
                session.link.send(line)
            return
        reason = event.content.get("reason")
        text = one_line(reason if isinstance(reason, str) and reason else f"by {event.sender} on Matrix", REASON_BYTES)
        plan = plan_moderation(
            ModerationRequest(self._network.name, network.channel_name(chat), folded, ban, text),
            grammar=network.grammar, known=network.known, own_nicks=network.own, bridge=network.bridge_identities,
        )
        for line in plan.lines:
            session.link.send(line)
        await self._bans.remember(chat, folded, plan.mask)
        if plan.notice is not None:
            ctx.log.info("%s: %s of %s: %s", self._network.name, "ban" if ban else "kick", event.state_key, plan.notice)
            await ctx.matrix.intent(ctx.bot_user_id).send_text(
                RoomID(event.room_id), f"{event.sender}: {plan.notice}", msgtype="m.notice",
                mentions=[UserID(event.sender)], txn_id=f"irc-moderation:{event.event_id}",
            )


__all__ = ["MatrixSideEvents"]
