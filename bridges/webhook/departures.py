"""A hook belongs to its room and its creator: when the creator leaves, is kicked or is banned,
their hooks in that room are suspended.

Suspended inbound hooks answer 403 ``hook_suspended``; suspended outbound hooks send nothing,
not even what was queued before. The room is told once, by a notice whose transaction ID comes
from the membership event (a replayed event does not post it twice, and a second departure
finds nothing left to suspend). A room admin can ``webhook adopt`` a suspended hook.
"""

from __future__ import annotations

import logging

from bridgekit import MatrixEvent, RoomID, UserID
from bridges.webhook.runtime import Runtime

log = logging.getLogger(__name__)


def departure_reason(event: MatrixEvent, user: UserID, membership: str) -> str:
    """How the creator left, in words: ``@a:x left the room``, ``@a:x was banned by @b:x``."""
    if membership == "ban":
        return f"{user} was banned by {event.sender}"
    if event.sender != user:
        return f"{user} was kicked by {event.sender}"
    return f"{user} left the room"


async def suspend_hooks_of(runtime: Runtime, event: MatrixEvent, user: UserID, membership: str) -> None:
    reason = departure_reason(event, user, membership)
    hooks, outbound = await runtime.store.suspend_creator(event.room_id, user, reason)
    if not hooks and not outbound:
        return
    log.info("suspended %d inbound and %d outbound webhooks in %s: %s", len(hooks), len(outbound),
             event.room_id, reason)
    named = [f"'{hook.name}' ({hook.id})" for hook in hooks] + [f"outbound {hook.id}" for hook in outbound]
    bot = runtime.ctx.matrix.intent(runtime.ctx.bot_user_id)
    await bot.send_text(
        RoomID(event.room_id),
        f"{reason}, so the webhooks they made here are suspended: {', '.join(named)}. Requests to them are "
        "refused and nothing is sent out through them. A room admin can take one over with "
        "'!bk webhook adopt <id>' (it gets new credentials) or remove it.",
        msgtype="m.notice", txn_id=f"webhook-suspended:{event.event_id}",
    )


__all__ = ["departure_reason", "suspend_hooks_of"]
