"""Matrix messages -> outbound hooks: stored per (event, hook), POSTed signed, retried durably.

Each Matrix message in a room with outbound hooks becomes one delivery row per hook before
``handle_matrix_event`` returns, so neither a restart nor a long outage of the receiver loses it.
A worker POSTs due rows; a failure schedules the next attempt with exponential backoff (capped),
and after the last attempt the room is told. Delivery is at-least-once: the ``X-Webhook-Delivery``
header stays the same on every attempt, for the receiver to drop repeats.

The bridge's own retries are used rather than the core's retry of ``handle_matrix_event``: that
one holds up the room's whole event queue (commands included) while it waits, and gives up after
seconds, where a receiver's outage lasts minutes.

Each attempt first checks, at send time, that the hook is still active (not suspended because its
creator left the room, not removed) and that the bridge bot is still in the room (asked of the
homeserver once per round and room); otherwise the delivery is dropped, never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from bridgekit import BridgeContext, GuardedHTTP, MatrixEvent, MatrixForbidden, MatrixNotFound, RoomID, UnsafeURL
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bridges.webhook.store import ACTIVE, OutboundDelivery, OutboundHook, WebhookStore

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def delivery_body(event: MatrixEvent, displayname: str | None) -> dict[str, Any]:
    """The JSON an outbound hook receives for one ``m.room.message``."""
    content = event.content
    formatted = content.get("formatted_body") if content.get("format") == "org.matrix.custom.html" else None
    return {
        "room": event.room_id,
        "event_id": event.event_id,
        "sender": event.sender,
        "displayname": displayname or event.sender,
        "body": content.get("body") if isinstance(content.get("body"), str) else "",
        "html": formatted if isinstance(formatted, str) else None,
        "msgtype": content.get("msgtype") if isinstance(content.get("msgtype"), str) else "m.text",
        "timestamp": event.origin_server_ts,
    }


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Wait after failed attempt ``attempt`` (1-based): base, 2 base, 4 base, ... capped."""
    return float(min(cap, base * 2 ** (attempt - 1)))


class PermanentFailure(Exception):
    """Retrying cannot help (the target is refused, or the receiver said the request is wrong)."""


class NotToBeSent(Exception):
    """The delivery must not go out at all: its hook is suspended or gone, or the bot left the room."""


class OutboundDeliverer:
    def __init__(
        self, ctx: BridgeContext, store: WebhookStore, settings: WebhookSettings, http: GuardedHTTP,
        box: SecretBox, *, clock: Clock = time.time,
    ) -> None:
        self._ctx = ctx
        self._store = store
        self._settings = settings
        self._http = http
        self._box = box
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-outbound")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def queue_event(self, event: MatrixEvent) -> int:
        """Store one delivery per outbound hook of the event's room; returns how many were new."""
        if event.type != "m.room.message":
            return 0
        hooks = await self._store.outbound_in_room(event.room_id, active_only=True)
        if not hooks:
            return 0
        body = json.dumps(delivery_body(event, await self._displayname(event)), ensure_ascii=False)
        now = int(self._clock() * 1000)
        added = 0
        for hook in hooks:
            delivery = OutboundDelivery(
                id=secrets.token_hex(16), hook_id=hook.id, event_id=event.event_id, room_id=event.room_id,
                body=body, state="pending", attempts=0, next_attempt_ms=now, last_error=None,
            )
            added += await self._store.add_delivery(delivery)
        self._wake.set()
        return added

    async def _displayname(self, event: MatrixEvent) -> str | None:
        try:
            member = await self._ctx.matrix.intent(self._ctx.bot_user_id).get_state(
                RoomID(event.room_id), "m.room.member", event.sender
            )
        except Exception:
            return None
        name = member.get("displayname")
        return name if isinstance(name, str) else None

    async def _run(self) -> None:
        while True:
            try:
                await self._deliver_due()
                await self._wait_for_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the outbound delivery loop failed; trying again shortly")
                await asyncio.sleep(1.0)

    async def _wait_for_next(self) -> None:
        next_ms = await self._store.next_delivery_ms()
        timeout = 60.0 if next_ms is None else max(0.0, next_ms / 1000 - self._clock())
        self._wake.clear()
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _deliver_due(self) -> None:
        due = await self._store.due_deliveries(int(self._clock() * 1000))
        rooms = {delivery.room_id for delivery in due}
        in_room = dict(zip(rooms, await asyncio.gather(*(self._bot_in_room(room) for room in rooms)), strict=True))
        await asyncio.gather(*(self._attempt(delivery, in_room[delivery.room_id]) for delivery in due))

    async def _bot_in_room(self, room_id: str) -> bool | BaseException:
        """Whether the bridge bot is joined to the room now, as the homeserver says (an error when
        it cannot say: the attempt then fails and is retried)."""
        bot = self._ctx.matrix.intent(self._ctx.bot_user_id)
        try:
            member = await bot.get_state(RoomID(room_id), "m.room.member", self._ctx.bot_user_id)
        except (MatrixForbidden, MatrixNotFound):
            return False
        except Exception as error:
            return error
        return bool(member.get("membership") == "join")

    async def _attempt(self, delivery: OutboundDelivery, bot_in_room: bool | BaseException) -> None:
        attempts = delivery.attempts + 1
        try:
            await self._post(delivery, bot_in_room)
        except NotToBeSent as why:
            log.info("outbound delivery %s of hook %s dropped: %s", delivery.id, delivery.hook_id, why)
            await self._store.update_delivery(delivery.id, state="dropped", last_error=str(why))
            return
        except Exception as error:
            reason = _describe(error)
            final = isinstance(error, PermanentFailure) or attempts >= self._settings.outbound_max_attempts
            if final:
                await self._store.update_delivery(delivery.id, state="failed", attempts=attempts, last_error=reason)
                log.warning("outbound hook %s gave up on %s after %d attempts: %s",
                            delivery.hook_id, delivery.event_id, attempts, reason)
                await self._tell_room(delivery, attempts, reason)
                return
            wait = backoff_seconds(attempts, self._settings.outbound_retry_base_seconds,
                                   self._settings.outbound_retry_cap_seconds)
            log.info("outbound hook %s: attempt %d for %s failed (%s); next in %.1f s",
                     delivery.hook_id, attempts, delivery.event_id, reason, wait)
            await self._store.update_delivery(
                delivery.id, attempts=attempts, last_error=reason, next_attempt_ms=int((self._clock() + wait) * 1000)
            )
            return
        await self._store.update_delivery(delivery.id, state="sent", attempts=attempts, last_error=None)

    async def _sendable_hook(self, delivery: OutboundDelivery, bot_in_room: bool | BaseException) -> OutboundHook:
        hook = await self._store.outbound(delivery.hook_id)
        if hook is None:
            raise NotToBeSent("the outbound hook was removed")
        if hook.status != ACTIVE:
            raise NotToBeSent(f"the outbound hook is suspended: {hook.suspended_reason}")
        if isinstance(bot_in_room, BaseException):
            raise RuntimeError(f"cannot tell whether the bridge bot is still in the room: {bot_in_room!r}")
        if not bot_in_room:
            raise NotToBeSent("the bridge bot is no longer in the room")
        return hook

    async def _post(self, delivery: OutboundDelivery, bot_in_room: bool | BaseException) -> None:
        hook = await self._sendable_hook(delivery, bot_in_room)
        try:
            secret = self._box.open(hook.sealed_secret, row=outbound_row(hook.id))
        except SecretBoxUnavailable as error:
            raise PermanentFailure(str(error)) from None
        body = delivery.body.encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "bridgekit-webhook",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: delivery.id,
        }
        try:
            response, _ = await self._http.request(
                "POST", hook.url, content=body, headers=headers, time_limit=self._settings.outbound_timeout_seconds,
                max_bytes=64 * 1024,
            )
        except UnsafeURL as error:
            raise PermanentFailure(str(error)) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if 400 <= status < 500 and status not in (408, 409, 425, 429):
            raise PermanentFailure(f"the receiver answered HTTP {status}")
        raise RuntimeError(f"the receiver answered HTTP {status}")

    async def _tell_room(self, delivery: OutboundDelivery, attempts: int, reason: str) -> None:
        try:
            await self._ctx.matrix.intent(self._ctx.bot_user_id).send_text(
                RoomID(delivery.room_id),
                f"Outbound webhook {delivery.hook_id} could not deliver a message ({delivery.event_id}) after "
                f"{attempts} attempt{'s' if attempts != 1 else ''}: {reason}",
                msgtype="m.notice", txn_id=f"webhook-out-failed:{delivery.id}",
            )
        except Exception:
            log.exception("could not report the failed outbound delivery %s in its room", delivery.id)


def _describe(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "the receiver did not answer in time"
    if isinstance(error, httpx.TransportError):
        return f"cannot connect to the receiver ({type(error).__name__})"
    return str(error) or type(error).__name__


__all__ = ["OutboundDeliverer", "PermanentFailure", "backoff_seconds", "delivery_body"]
