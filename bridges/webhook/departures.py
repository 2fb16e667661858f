"""A hook belongs to its room and its creator: when the creator leaves, is kicked or is banned,
their hooks in that room are suspended.

Suspended inbound hooks answer 403 ``hook_suspended``; suspended outbound hooks send nothing,
not even what was queued before. The room is told once, by a notice whose transaction ID comes
from the membership event (a replayed event does not post it twice, and a second departure
finds nothing left to suspend). A room admin can ``webhook adopt`` a suspended hook.

Departures reach the connector as room events, stored by the core's inbox even while the bridge
is down, so none is missed once this code runs. Hooks whose creators left before it ran (a
database upgraded from an older version) are found by :func:`suspend_departed`, which asks the
homeserver for each creator's membership at start-up.
"""

from __future__ import annotations

import logging

from bridgekit import BridgeContext, MatrixEvent, MatrixForbidden, MatrixNotFound, RoomID, UserID
from bridges.webhook.store import WebhookStore

log = logging.getLogger(__name__)


def departure_reason(event: MatrixEvent, user: UserID, membership: str) -> str:
    """How the creator left, in words: ``@a:x left the room``, ``@a:x was banned by @b:x``."""
    if membership == "ban":
        return f"{user} was banned by {event.sender}"
    if event.sender != user:
        return f"{user} was kicked by {event.sender}"
    return f"{user} left the room"


async def suspend_hooks_of(ctx: BridgeContext, store: WebhookStore, event: MatrixEvent) -> None:
    """A member event: a creator who left the room, or was kicked or banned, has their hooks there suspended."""
    membership, user = event.content.get("membership"), event.state_key
    if user and user != ctx.bot_user_id and membership in ("leave", "ban"):
        reason = departure_reason(event, UserID(user), str(membership))
        await _suspend(ctx, store, event.room_id, UserID(user), reason, txn_id=f"webhook-suspended:{event.event_id}")


async def suspend_departed(ctx: BridgeContext, store: WebhookStore) -> int:
    """Suspend the active hooks whose creator is no longer in the hook's room, as the homeserver
    says now; returns how many creators were found gone. A room the bot cannot read is skipped."""
    bot = ctx.matrix.intent(ctx.bot_user_id)
    gone = 0
    for room_id, creator in await store.active_creators():
        try:
            member = await bot.get_state(RoomID(room_id), "m.room.member", creator)
        except MatrixNotFound:
            member = {"membership": "leave"}  # never a member as far as the room's state knows
        except MatrixForbidden:
            continue  # the bot left the room: its outbound deliveries stop anyway
        except Exception:
            log.exception("could not check whether %s is still in %s", creator, room_id)
            continue
        membership = member.get("membership")
        if membership in ("leave", "ban"):
            gone += 1
            reason = f"{creator} is no longer in the room ({'banned' if membership == 'ban' else 'left'})"
            await _suspend(ctx, store, room_id, UserID(creator), reason,
                           txn_id=f"webhook-suspended-at-start:{room_id}:{creator}:{membership}")
    return gone


async def _suspend(
    ctx: BridgeContext, store: WebhookStore, room_id: str, user: UserID, reason: str, *, txn_id: str,
) -> None:
    hooks, outbound = await store.suspend_creator(room_id, user, reason)
    if not hooks and not outbound:
        return
    log.info("suspended %d inbound and %d outbound webhooks in %s: %s", len(hooks), len(outbound), room_id, reason)
    named = [f"'{hook.name}' ({hook.id})" for hook in hooks] + [f"outbound {hook.id}" for hook in outbound]
    bot = ctx.matrix.intent(ctx.bot_user_id)
    await bot.send_text(
        RoomID(room_id),
        f"{reason}, so the webhooks they made here are suspended: {', '.join(named)}. Requests to them are "
        "refused and nothing is sent out through them. A room admin can take one over with "
        "'!bk webhook adopt <id>' (it gets new credentials) or remove it.",
        msgtype="m.notice", txn_id=txn_id,
    )


__all__ = ["departure_reason", "suspend_departed", "suspend_hooks_of"]
