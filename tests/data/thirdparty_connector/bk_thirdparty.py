"""A minimal third-party connector: found by entry point, it answers every message with a notice."""

from __future__ import annotations

from bridgekit import BridgeContext, MatrixEvent, RoomID


class ThirdPartyConnector:
    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name

    async def start(self) -> None:
        self.ctx.log.info("third-party connector started (found by entry point)")

    async def stop(self) -> None:
        pass

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        if event.type != "m.room.message":
            return
        await self.ctx.matrix.intent(self.ctx.bot_user_id).send_text(
            RoomID(event.room_id), "third-party connector heard you", msgtype="m.notice",
            txn_id=f"thirdparty:{event.event_id}",
        )
