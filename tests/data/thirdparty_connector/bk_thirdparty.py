"""A minimal third-party connector: found by entry point, it answers every message with a notice."""

from __future__ import annotations

from bridgekit import BridgeContext, MatrixEvent, RoomID


class ThirdPartyConnector:
    name = "thirdparty"

    def __init__(self) -> None:
        self._ctx: BridgeContext | None = None

    async def start(self, ctx: BridgeContext) -> None:
        self._ctx = ctx
        ctx.log.info("third-party connector started (found by entry point)")

    async def stop(self) -> None:
        self._ctx = None

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        ctx = self._ctx
        if ctx is None or event.type != "m.room.message":
            return
        await ctx.matrix.intent(ctx.bot_user_id).send_text(
            RoomID(event.room_id), "third-party connector heard you", msgtype="m.notice",
            txn_id=f"thirdparty:{event.event_id}",
        )
