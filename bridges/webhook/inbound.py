"""Accepted inbound messages -> Matrix: stored first, then posted in order per room, retried.

A request's message is committed to the store before anything is posted, so an answered request
is never lost: pending rows are posted again at start-up. Each post uses a Matrix transaction ID
derived from the row, so posting again after a crash gives back the same event. Messages of one
room go out one after another (a lock per room, fair: first come, first posted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bridgekit import BridgeContext, ContentURI, GuardedHTTP, ResponseTooLarge, RoomID, UnsafeURL, UserID
from bridges.webhook.identity import IdentityStyle, Speaker, choose_speaker, name_key
from bridges.webhook.message import HookMessage
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import ACTIVE, HookGhost, InboundMessage, WebhookStore
from bridges.webhook.translate import bot_style

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): 1, 2, 4, ... capped at a minute."""
    return float(min(60, 2 ** (attempt - 1)))


class HookSuspended(Exception):
    """The hook was suspended after accepting the message: it is not posted."""


class InboundPoster:
    def __init__(
        self, ctx: BridgeContext, store: WebhookStore, settings: WebhookSettings, fetch: GuardedHTTP,
        *, sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._settings = settings
        self._fetch = fetch
        self._sleep = sleep
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[int, asyncio.Task[str | None]] = {}

    def start_delivery(self, row: InboundMessage) -> asyncio.Task[str | None]:
        """Post the row in the background (once: a second call gives the running task)."""
        task = self._tasks.get(row.id)
        if task is None:
            task = asyncio.create_task(self._deliver(row), name=f"webhook-inbound:{row.id}")
            self._tasks[row.id] = task
            task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[str | None]) -> None:
        for row_id, running in list(self._tasks.items()):
            if running is task:
                del self._tasks[row_id]

    async def resume(self) -> int:
        """Post what the previous run accepted and did not finish."""
        pending = await self._store.pending_inbound()
        for row in pending:
            self.start_delivery(row)
        return len(pending)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, row: InboundMessage) -> str | None:
        """The event ID once posted; None when every attempt failed (the room is told)."""
        lock = self._room_locks.setdefault(row.room_id, asyncio.Lock())
        attempts = row.attempts
        async with lock:
            while True:
                try:
                    event_id = await self._post(row)
                except asyncio.CancelledError:
                    raise
                except HookSuspended as why:
                    log.info("message %d of hook %s not posted: %s", row.id, row.hook_id, why)
                    await self._store.finish_inbound(row.id, state="dropped", event_id=None, attempts=attempts)
                    return None
                except Exception as error:
                    attempts += 1
                    log.warning("posting message %d of hook %s failed (attempt %d): %r", row.id, row.hook_id,
                                attempts, error)
                    if attempts >= self._settings.inbound_max_attempts:
                        await self._store.finish_inbound(row.id, state="failed", event_id=None, attempts=attempts)
                        await self._tell_room(row, error)
                        return None
                    await self._sleep(retry_delay(attempts))
                else:
                    await self._store.finish_inbound(row.id, state="sent", event_id=event_id, attempts=attempts + 1)
                    return event_id

    async def _post(self, row: InboundMessage) -> str:
        message = HookMessage.from_json(row.message)
        hook = await self._store.hook(row.hook_id)
        if hook is not None and hook.status != ACTIVE:
            raise HookSuspended(f"the hook is suspended: {hook.suspended_reason}")
        # A hook removed after accepting the request still gets its message posted, bot-style.
        style = IdentityStyle(hook.identity) if hook else IdentityStyle.BOT
        hook_name = hook.name if hook else "webhook"
        known = await self._store.ghost(row.hook_id, _key(message, hook_name))
        speaker = choose_speaker(
            style, network=self._ctx.name, hook_id=row.hook_id, hook_name=hook_name, username=message.username,
            known_ghost=known is not None, ghost_count=await self._store.ghost_count(row.hook_id),
            max_ghosts=self._settings.max_ghosts_per_hook,
        )
        room_id = RoomID(row.room_id)
        txn_id = f"webhook-in:{row.hook_id}:{row.id}:{row.created_ms}"
        if speaker.is_bot:
            body, html = bot_style(message, speaker.name)
            # A bot "emote" would read "* bridgebot * name ...": the line already says who acts.
            msgtype = "m.text" if message.msgtype == "m.emote" else message.msgtype
            bot = self._ctx.matrix.intent(self._ctx.bot_user_id)
            event_id: str = await bot.send_text(room_id, body, html=html, msgtype=msgtype, txn_id=txn_id)
            return event_id
        ghost = await self._ghost_ready(row.hook_id, speaker, message, known)
        await ghost.ensure_joined(room_id)
        event_id = await ghost.send_text(room_id, message.text, html=message.html, msgtype=message.msgtype,
                                         txn_id=txn_id)
        return event_id

    async def _ghost_ready(self, hook_id: str, speaker: Speaker, message: HookMessage, known: HookGhost | None) -> Any:
        assert speaker.ghost_suffix is not None
        user_id = self._ctx.ghost_user_id(speaker.ghost_suffix)
        ghost = self._ctx.matrix.intent(user_id)
        await ghost.ensure_registered()
        record = known or HookGhost(hook_id=hook_id, name_key=speaker.name_key, user_id=user_id)
        changed = known is None
        if record.displayname != speaker.name:
            await ghost.set_displayname(speaker.name)
            record.displayname = speaker.name
            changed = True
        if message.avatar_url and message.avatar_url != record.avatar_source:
            await self._set_avatar(ghost, user_id, message.avatar_url)
            record.avatar_source = message.avatar_url  # also when refused: not fetched again per message
            changed = True
        if changed:
            await self._store.save_ghost(record)
        return ghost

    async def _set_avatar(self, ghost: Any, user_id: UserID, url: str) -> None:
        """Fetch the picture through the SSRF guard and make it the ghost's; a failure is only logged."""
        try:
            response, data = await self._fetch.request(
                "GET", url, time_limit=self._settings.outbound_timeout_seconds,
                max_bytes=self._settings.avatar_max_bytes,
            )
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
            if response.status_code != 200 or not content_type.startswith("image/"):
                log.info("avatar for %s not used: HTTP %d, %s", user_id, response.status_code, content_type or "?")
                return
            uri: ContentURI = await ghost.upload_media(data, content_type, filename="avatar")
            await ghost.set_avatar_url(uri)
        except (UnsafeURL, ResponseTooLarge) as error:
            log.info("avatar for %s refused: %s", user_id, error)
        except Exception as error:
            log.warning("avatar for %s could not be set: %r", user_id, error)

    async def _tell_room(self, row: InboundMessage, error: BaseException) -> None:
        try:
            await self._ctx.matrix.intent(self._ctx.bot_user_id).send_text(
                RoomID(row.room_id),
                f"A message that webhook {row.hook_id} accepted could not be posted here ({type(error).__name__}).",
                msgtype="m.notice", txn_id=f"webhook-in-failed:{row.hook_id}:{row.id}:{row.created_ms}",
            )
        except Exception:
            log.exception("could not report the failed webhook message %d in its room", row.id)


def _key(message: HookMessage, hook_name: str) -> str:
    return name_key(message.username or hook_name)


def now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["InboundPoster", "now_ms", "retry_delay"]
