"""A connector whose "remote network" is driven from Matrix, for end-to-end tests of remote ->
Matrix delivery.

The bridge's bot accepts invites; the connector links the room as the portal of a remote chat (named after the room).
In a linked room:
- ``!remote NICK: TEXT`` makes remote user NICK say TEXT (shown as ``Nick``);
- ``!remote NICK^: TEXT`` makes NICK reply to the previous remote message of the chat;
- ``!burst N`` makes remote user ``burst`` say ``burst 0`` ... ``burst N-1``;
- ``!wait ID NICK: TEXT`` makes NICK say TEXT as remote message ID, with ``emit(..., wait=True)``;
  the bot then says ``posted ID as EVENT_ID`` (what the wait returned), or ``ID failed: ERROR``;
- ``!job TEXT`` queues a job (``ctx.jobs``) whose handler has the bot say ``job TEXT``; ``!job
  fail-once TEXT`` fails its first attempt (so the bot says it after one retry);
- ``!note TEXT`` stores a note in the connector's own table (``tests/support/notes_tables.py``)
  and the bot says ``notes here: N``.
Remote message IDs derive from the Matrix event that caused them, so a replayed event emits the
same messages again, which the core must post only once.
"""

from __future__ import annotations

import re

from bridgekit import (
    BridgeContext,
    BridgekitError,
    ChatID,
    Job,
    JobRetry,
    MatrixEvent,
    MessageID,
    RemoteMessage,
    RemoteUserID,
    RoomID,
)
from tests.support.notes_tables import NOTES_TABLES, add_note

SAY = re.compile(r"!remote (?P<nick>[a-z]+)(?P<reply>\^?): (?P<text>.+)", re.DOTALL)
BURST = re.compile(r"!burst (?P<count>\d+)")
NOTE = re.compile(r"!note (?P<text>.+)", re.DOTALL)
JOB = re.compile(r"!job (?P<fail>fail-once )?(?P<text>.+)", re.DOTALL)
WAIT = re.compile(r"!wait (?P<id>\S+) (?P<nick>[a-z]+): (?P<text>.+)", re.DOTALL)


class RemoteChatConnector:
    tables = NOTES_TABLES

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self._last_message: dict[ChatID, MessageID] = {}
        ctx.jobs.register("say", self._say_job, retry=JobRetry(max_attempts=3, base_seconds=0.2))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        ctx = self.ctx
        if event.type == "m.room.member":
            if event.state_key == ctx.bot_user_id and event.content.get("membership") == "invite":
                # The bridge has the bot accept the invite; the connector makes the room a portal.
                await ctx.link_portal(ChatID(event.room_id), RoomID(event.room_id))
            return
        body = event.content.get("body") if event.type == "m.room.message" else None
        if not isinstance(body, str):
            return
        chat = ChatID(event.room_id)  # each room is the portal of a chat named after it
        if said := SAY.fullmatch(body):
            await ctx.emit(RemoteMessage(
                chat_id=chat, message_id=MessageID(event.event_id), sender_id=RemoteUserID(said["nick"]),
                text=said["text"],
                sender_name=said["nick"].title(), timestamp_ms=event.origin_server_ts + 1000,
                reply_to=self._last_message.get(chat) if said["reply"] else None,
            ))
            self._last_message[chat] = MessageID(event.event_id)
        elif note := NOTE.fullmatch(body):
            count = await add_note(ctx.database, ctx.name, event.room_id, note["text"])
            await ctx.matrix.intent(ctx.bot_user_id).send_text(
                RoomID(event.room_id), f"notes here: {count}", msgtype="m.notice", txn_id=f"note:{event.event_id}"
            )
        elif job := JOB.fullmatch(body):
            payload = {"room": event.room_id, "text": job["text"], "fail_once": bool(job["fail"])}
            await ctx.jobs.enqueue("say", payload, key=event.room_id)
        elif waited := WAIT.fullmatch(body):
            await self._say_and_wait(ctx, event, waited)
        elif burst := BURST.fullmatch(body):
            for i in range(int(burst["count"])):
                await ctx.emit(RemoteMessage(
                    chat_id=chat, message_id=MessageID(f"{event.event_id}/{i}"), sender_id=RemoteUserID("burst"),
                    text=f"burst {i}",
                ))

    async def _say_and_wait(self, ctx: BridgeContext, event: MatrixEvent, waited: re.Match[str]) -> None:
        try:
            posted = await ctx.emit(RemoteMessage(
                chat_id=ChatID(event.room_id), message_id=MessageID(waited["id"]),
                sender_id=RemoteUserID(waited["nick"]),
                text=waited["text"],
            ), wait=True)
            answer = f"posted {waited['id']} as {posted}"
        except BridgekitError as error:
            answer = f"{waited['id']} failed: {error}"
        await ctx.matrix.intent(ctx.bot_user_id).send_text(
            RoomID(event.room_id), answer, msgtype="m.notice", txn_id=f"wait-answer:{event.event_id}"
        )

    async def _say_job(self, job: Job) -> None:
        ctx = self.ctx
        if job.payload["fail_once"] and job.attempt == 1:
            raise RuntimeError("failing the first attempt, as asked")
        await ctx.matrix.intent(ctx.bot_user_id).send_text(
            RoomID(job.payload["room"]), f"job {job.payload['text']} (attempt {job.attempt})", msgtype="m.notice",
            txn_id=f"job:{job.id}",
        )
