"""What the connector holds once started; commands and routes reach it through a getter."""

from __future__ import annotations

from dataclasses import dataclass

from bridgekit import BridgeContext, GuardedHTTP, RoomID, UserID
from bridges.webhook.secret_box import SecretBox
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import WebhookStore


@dataclass(frozen=True)
class Runtime:
    ctx: BridgeContext
    settings: WebhookSettings
    store: WebhookStore
    box: SecretBox
    http: GuardedHTTP

    async def send_privately(self, user_id: UserID, text: str, *, txn_id: str) -> RoomID:
        """Send ``text`` to ``user_id`` alone: in their direct chat with the bot, made if needed.

        Secrets (hook URLs, signing secrets) go only here, never into the room the hook posts to.
        """
        bot = self.ctx.matrix.intent(self.ctx.bot_user_id)
        known = await self.store.private_room(user_id)
        if known is None:
            room_id: RoomID = await bot.create_room(
                name="Webhook secrets", topic="Private: webhook URLs and secrets the bridge sends you",
                invitees=[user_id], preset="trusted_private_chat", is_direct=True,
            )
            await self.store.set_private_room(user_id, room_id)
        else:
            room_id = RoomID(known)
        await bot.send_text(room_id, text, msgtype="m.notice", txn_id=txn_id)
        return room_id


__all__ = ["Runtime"]
