"""Matrix messages -> outbound hooks: one job of the framework's queue (``ctx.jobs``) per
(event, hook), POSTed signed, retried with backoff.

Each Matrix message in a room with outbound hooks becomes one job per hook before
``handle_matrix_event`` returns, so neither a restart nor a long outage of the receiver loses it.
The jobs of one hook share its ordering key: a delivery being retried holds back the later ones
of the same hook (the receiver gets the room's messages in order), while a hook whose receiver
stays down holds up neither the room's other events nor the other hooks. Each job is queued once
per (hook, event) (``unique``), so a Matrix event handed over again after a crash is not sent
twice. After the last attempt the room is told. Delivery is at-least-once: the
``X-Webhook-Delivery`` header stays the same on every attempt, for the receiver to drop repeats.

Each attempt first checks, at send time, that the hook is still active (not suspended because its
creator left the room, not removed, not adopted since) and that the bridge bot is still in the
room, as the homeserver says; otherwise the delivery is dropped, never sent.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from bridgekit import (
    BridgeContext,
    GiveUpJob,
    GuardedHTTP,
    Job,
    JobQueue,
    JobRetry,
    MatrixEvent,
    MatrixForbidden,
    MatrixNotFound,
    RoomID,
    UnsafeURL,
)
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bridges.webhook.store import ACTIVE, OutboundHook, WebhookStore

log = logging.getLogger(__name__)

Clock = Callable[[], float]

DELIVERY = "delivery"
"""The kind of the outbound jobs."""


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


def delivery_job(
    hook_id: str, creator: str, event_id: str, room_id: str, body: str, delivery_id: str,
) -> dict[str, str]:
    """A delivery's job payload (``creator``: who the hook belonged to when it was queued)."""
    return {"delivery_id": delivery_id, "hook_id": hook_id, "event_id": event_id, "room_id": room_id,
            "body": body, "creator": creator}


async def enqueue_delivery(jobs: JobQueue, delivery: dict[str, str]) -> None:
    """Queue a delivery behind the earlier ones of its hook, once per (hook, event)."""
    await jobs.enqueue(DELIVERY, delivery, key=hook_key(delivery["hook_id"]),
                       unique=f"{delivery['hook_id']}:{delivery['event_id']}")


def hook_key(hook_id: str) -> str:
    """The ordering key of a hook's deliveries."""
    return f"outbound:{hook_id}"


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

    def register(self) -> None:
        """Register the delivery job (in ``start``)."""
        retry = JobRetry(max_attempts=self._settings.outbound_max_attempts,
                         base_seconds=self._settings.outbound_retry_base_seconds,
                         cap_seconds=self._settings.outbound_retry_cap_seconds)
        self._ctx.jobs.register(DELIVERY, self.deliver, retry=retry, on_failed=self._tell_room)

    async def queue_event(self, event: MatrixEvent) -> int:
        """Queue one delivery per active outbound hook of the event's room; returns how many."""
        if event.type != "m.room.message":
            return 0
        hooks = await self._store.in_room(OutboundHook, event.room_id, active_only=True)
        if not hooks:
            return 0
        body = json.dumps(delivery_body(event, await self._displayname(event)), ensure_ascii=False)
        for hook in hooks:
            await enqueue_delivery(self._ctx.jobs, delivery_job(hook.id, hook.creator, event.event_id, event.room_id,
                                                                body, secrets.token_hex(16)))
        return len(hooks)

    async def _displayname(self, event: MatrixEvent) -> str | None:
        try:
            member = await self._ctx.matrix.intent(self._ctx.bot_user_id).get_state(
                RoomID(event.room_id), "m.room.member", event.sender
            )
        except Exception:
            return None
        name = member.get("displayname")
        return name if isinstance(name, str) else None

    async def deliver(self, job: Job) -> None:
        """One attempt (the job handler): sent, dropped, or raises to be retried (GiveUpJob: not)."""
        delivery: dict[str, str] = job.payload
        try:
            await self._post(delivery)
        except NotToBeSent as why:
            log.info("outbound delivery %s of hook %s dropped: %s", delivery["delivery_id"], delivery["hook_id"], why)
        except GiveUpJob:
            raise  # retrying cannot help: the target is refused, or the receiver said the request is wrong
        except Exception as error:
            reason = _describe(error)
            log.info("outbound hook %s: attempt %d for %s failed (%s)", delivery["hook_id"], job.attempt,
                     delivery["event_id"], reason)
            raise RuntimeError(reason) from None

    async def _bot_in_room(self, room_id: str) -> bool:
        """Whether the bridge bot is joined to the room now, as the homeserver says (raises when
        it cannot say: the attempt then fails and is retried)."""
        bot = self._ctx.matrix.intent(self._ctx.bot_user_id)
        try:
            member = await bot.get_state(RoomID(room_id), "m.room.member", self._ctx.bot_user_id)
        except (MatrixForbidden, MatrixNotFound):
            return False
        return bool(member.get("membership") == "join")

    async def _sendable_hook(self, delivery: dict[str, str]) -> OutboundHook:
        hook = await self._store.get(OutboundHook, delivery["hook_id"])
        if hook is None:
            raise NotToBeSent("the outbound hook was removed")
        if hook.status != ACTIVE:
            raise NotToBeSent(f"the outbound hook is suspended: {hook.suspended_reason}")
        if hook.creator != delivery["creator"]:
            raise NotToBeSent("the outbound hook was adopted since: it sends only what was said after")
        if not await self._bot_in_room(delivery["room_id"]):
            raise NotToBeSent("the bridge bot is no longer in the room")
        return hook

    async def _post(self, delivery: dict[str, str]) -> None:
        hook = await self._sendable_hook(delivery)
        try:
            secret = self._box.open(hook.sealed_secret, row=outbound_row(hook.id))
        except SecretBoxUnavailable as error:
            raise GiveUpJob(str(error)) from None
        body = delivery["body"].encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "bridgekit-webhook",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: delivery["delivery_id"],
        }
        try:
            response, _ = await self._http.request(
                "POST", hook.url, content=body, headers=headers, time_limit=self._settings.outbound_timeout_seconds,
                max_bytes=64 * 1024,
            )
        except UnsafeURL as error:
            raise GiveUpJob(str(error)) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if 400 <= status < 500 and status not in (408, 409, 425, 429):
            raise GiveUpJob(f"the receiver answered HTTP {status}")
        raise RuntimeError(f"the receiver answered HTTP {status}")

    async def _tell_room(self, job: Job, reason: str) -> None:
        delivery: dict[str, str] = job.payload
        reason = reason.removeprefix(f"{RuntimeError.__name__}: ")
        log.warning("outbound hook %s gave up on %s after %d attempts: %s",
                    delivery["hook_id"], delivery["event_id"], job.attempt, reason)
        try:
            await self._ctx.matrix.intent(self._ctx.bot_user_id).send_text(
                RoomID(delivery["room_id"]),
                f"Outbound webhook {delivery['hook_id']} could not deliver a message ({delivery['event_id']}) after "
                f"{job.attempt} attempt{'s' if job.attempt != 1 else ''}: {reason}",
                msgtype="m.notice", txn_id=f"webhook-out-failed:{delivery['delivery_id']}",
            )
        except Exception:
            log.exception("could not report the failed outbound delivery %s in its room", delivery["delivery_id"])


def _describe(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "the receiver did not answer in time"
    if isinstance(error, httpx.TransportError):
        return f"cannot connect to the receiver ({type(error).__name__})"
    return str(error) or type(error).__name__


__all__ = ["DELIVERY", "OutboundDeliverer", "delivery_body", "delivery_job", "enqueue_delivery",
           "hook_key"]
