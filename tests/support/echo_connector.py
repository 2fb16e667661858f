"""A tiny connector for end-to-end tests: its "remote network" is an echo.

When a Matrix user says something in a room the bridge bot is in, the echo ghost
(``@{prefix}echo:{server}``) joins and answers ``echo: <text>``, with its timestamp massaged to
one minute after the original (so a test can tell massaging worked). The answer's transaction ID
is derived from the original event ID, so a replay after a crash cannot post it twice.
The bridge itself has the bot accept invites (the management room does).
"""

from __future__ import annotations

from bridgekit.connector import BridgeContext
from bridgekit.events import MatrixEvent
from bridgekit.ids import RoomID, UserID

ECHO_DELAY_MS = 60_000


class EchoConnector:
    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        ctx = self.ctx
        if event.type != "m.room.message":
            return
        body = event.content.get("body")
        if not isinstance(body, str):
            return
        ghost = ctx.matrix.intent(UserID(ctx.ghost_user_id("echo")))
        await ghost.ensure_registered()
        await ghost.ensure_joined(RoomID(event.room_id))
        await ghost.send_text(
            RoomID(event.room_id),
            f"echo: {body}",
            txn_id=f"echo:{event.event_id}",
            ts=event.origin_server_ts + ECHO_DELAY_MS,
        )
