"""Accepted inbound messages -> Matrix, through the core: ``ctx.emit(..., wait=True)``.

A request's message is committed to the webhook's tables first (its Idempotency-Key answers later
repeats), then emitted: the core stores it in its outbox and posts it in order per room (a chat
named after the room is a *feed* of it: it posts there without making the room its portal, so the
room stays whatever else it is, an IRC channel's portal say), retrying, and telling the room when it
gives up. The emit waits for the Matrix event ID the HTTP answer carries. How each message ended is
recorded for repeats of its Idempotency-Key, in batches written a moment after the answers (not one
more write per request); a message whose outcome was not recorded (the bridge stopped first) is
emitted again at start-up: the core recognises it (same chat and message ID), posts it once and
answers with its event ID.

Who speaks: a bot-style hook's lines are posted by the bridge bot (``**name**: text``); a
ghosts-style hook gives each sender name a ghost scoped to the hook (``identity.py``), whose
picture is fetched here, through the webhook's own SSRF allow-list, and handed to the core as an
``mxc://`` URI.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from bridgekit import (
    BridgeContext,
    ChatID,
    ContentURI,
    DeliveryFailed,
    EventID,
    GuardedHTTP,
    MessageID,
    RemoteMessage,
    RemoteUserID,
    ResponseTooLarge,
    RoomID,
    UnsafeURL,
)
from bridges.webhook.identity import IdentityStyle, choose_speaker, name_key
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import Hook, HookGhost, InboundMessage, WebhookStore
from bridges.webhook.translate import HookMessage, bot_style

log = logging.getLogger(__name__)

RECORD_AFTER_SECONDS = 0.2
"""Outcomes are written together this long after the first of them (write-behind)."""


class InboundPosts:
    """Emits accepted messages and records how each ended (for repeats of its Idempotency-Key)."""

    def __init__(self, ctx: BridgeContext, store: WebhookStore, settings: WebhookSettings, fetch: GuardedHTTP) -> None:
        self._ctx = ctx
        self._store = store
        self._settings = settings
        self._fetch = fetch
        self._tasks: dict[str, asyncio.Task[EventID | None]] = {}
        self._outcomes: dict[int, tuple[str, EventID | None]] = {}
        self._recorder: asyncio.Task[None] | None = None

    def post(self, row: InboundMessage, hook: Hook | None = None) -> asyncio.Task[EventID | None]:
        """Emit the row (of ``hook``, read when not given) and wait for its event in the
        background (once: a second call gives the running task). Its outcome is recorded when it
        ends, after whoever awaits it is answered. A row that was not stored (nothing to remember
        of its request) gets a message ID of its own; its outcome is not recorded."""
        message_id = f"{row.hook_id}:{row.id if row.id is not None else 'r' + secrets.token_hex(8)}"
        task = self._tasks.get(message_id)
        if task is None:
            task = asyncio.create_task(self._emit(row, message_id, hook), name=f"webhook-inbound:{message_id}")
            self._tasks[message_id] = task
            task.add_done_callback(lambda done: self._record(row, message_id, done))
        return task

    async def resume(self) -> int:
        """Emit again what the previous run accepted and did not see posted."""
        pending = await self._store.pending_inbound()
        for row in pending:
            self.post(row)
        return len(pending)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()  # only the waits: the core posts what it stored
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._recorder is not None:
            self._recorder.cancel()
        await self._write_outcomes()

    async def _emit(self, row: InboundMessage, message_id: str, hook: Hook | None) -> EventID | None:
        message = await self._remote_message(row, message_id, hook or await self._store.hook(row.hook_id))
        return await self._ctx.emit(message, wait=True)

    def _record(self, row: InboundMessage, message_id: str, task: asyncio.Task[EventID | None]) -> None:
        del self._tasks[message_id]
        if task.cancelled() or row.id is None:
            return
        error = task.exception()
        if error is not None and not isinstance(error, DeliveryFailed):
            log.info("message %d of hook %s not seen posted (%r): emitted again at the next start", row.id,
                     row.hook_id, error)
            return  # stays pending
        event_id = None if error is not None else task.result()
        self._outcomes[row.id] = ("sent" if event_id is not None else "failed", event_id)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_soon(), name="webhook-inbound-outcomes")

    async def _record_soon(self) -> None:
        await asyncio.sleep(RECORD_AFTER_SECONDS)  # gathers the outcomes of a burst into one write
        await self._write_outcomes()

    async def _write_outcomes(self) -> None:
        outcomes, self._outcomes = self._outcomes, {}
        try:
            await self._store.finish_inbound(outcomes)
        except Exception:
            log.exception("could not record how %d webhook messages ended; they are emitted again at the next "
                          "start (posted once)", len(outcomes))

    async def _remote_message(self, row: InboundMessage, message_id: str, hook: Hook | None) -> RemoteMessage:
        message = HookMessage.from_json(row.message)
        # A hook removed after accepting the request still gets its message posted, bot-style.
        style = IdentityStyle(hook.identity) if hook else IdentityStyle.BOT
        hook_name = hook.name if hook else "webhook"
        name = message.username or hook_name
        known = None if style is IdentityStyle.BOT else await self._store.ghost(row.hook_id, name_key(name))
        speaker = choose_speaker(
            style, hook_id=row.hook_id, hook_name=hook_name, username=message.username, known_ghost=known is not None,
            ghost_count=0 if known or style is IdentityStyle.BOT else await self._store.ghost_count(row.hook_id),
            max_ghosts=self._settings.max_ghosts_per_hook,
        )
        if speaker.sender_id is None:
            body, html = bot_style(message, speaker.name)
            # A bot "emote" would read "* bridgebot * name ...": the line already says who acts.
            msgtype = "m.text" if message.msgtype == "m.emote" else message.msgtype
            return RemoteMessage(
                ChatID(row.room_id), MessageID(message_id), RemoteUserID(f"{row.hook_id}.bot"), body, html=html,
                msgtype=msgtype, sender_name=speaker.name, timestamp_ms=row.created_ms, by_bot=True,
            )
        record = await self._ghost_record(row.hook_id, speaker.sender_id, speaker.name, message, known)
        return RemoteMessage(
            ChatID(row.room_id), MessageID(message_id), RemoteUserID(speaker.sender_id), message.text,
            html=message.html, msgtype=message.msgtype, sender_name=speaker.name, timestamp_ms=row.created_ms,
            sender_avatar_url=record.avatar_mxc,
        )

    async def _ghost_record(
        self, hook_id: str, sender_id: str, name: str, message: HookMessage, known: HookGhost | None,
    ) -> HookGhost:
        """The ghost's row (counted against the hook's bound), its picture fetched when it changed."""
        record = known or HookGhost(
            hook_id=hook_id, name_key=name_key(name), user_id=self._ctx.ghost_for(RemoteUserID(sender_id)),
        )
        changed = known is None or record.displayname != name
        record.displayname = name
        if message.avatar_url and message.avatar_url != record.avatar_source:
            record.avatar_mxc = await self._upload_avatar(record.user_id, message.avatar_url)
            record.avatar_source = message.avatar_url  # also when refused: not fetched again per message
            changed = True
        if changed:
            await self._store.save_ghost(record)
        return record

    async def _upload_avatar(self, user_id: str, url: str) -> str | None:
        """Fetch the picture through the SSRF guard and upload it; None (logged) when refused."""
        try:
            response, data = await self._fetch.request(
                "GET", url, time_limit=self._settings.outbound_timeout_seconds,
                max_bytes=self._settings.avatar_max_bytes,
            )
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
            if response.status_code != 200 or not content_type.startswith("image/"):
                log.info("avatar for %s not used: HTTP %d, %s", user_id, response.status_code, content_type or "?")
                return None
            bot = self._ctx.matrix.intent(self._ctx.bot_user_id)
            uri: ContentURI = await bot.upload_media(data, content_type, filename="avatar")
            return str(uri)
        except (UnsafeURL, ResponseTooLarge) as error:
            log.info("avatar for %s refused: %s", user_id, error)
        except Exception as error:
            log.warning("avatar for %s could not be fetched: %r", user_id, error)
        return None


async def link_rooms(ctx: BridgeContext, rooms: list[str]) -> None:
    """Make the chat named after each room with inbound hooks a feed of the room (the core writes
    only what changes). A feed, not a portal: the room may be another connector's portal (an IRC
    channel a GitHub hook posts into), which a portal of ours would displace. Rooms that earlier
    builds linked as portals become feeds here, at the first start."""
    for room_id in rooms:
        await ctx.link_feed(ChatID(room_id), RoomID(room_id))


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["InboundPosts", "link_rooms", "now_ms"]
