"""One inbound request, from raw bytes to an answer: the checks in order, then store and post.

Order matters: size (413) before anything is parsed, then the hook (404) and its proof (401),
then whether the hook is suspended (403, told only to a sender who proved they hold it), then
the hook's rate (429), then the payload (400/415). Only a request that passed all of them is
emitted (``inbound.py``), so a rejected request never posts anything; it is stored here first
when a later request may ask about it (it has an Idempotency-Key or a signed body). An
Idempotency-Key (or GitHub's delivery ID) already seen for the hook gets the first request's
answer again. GitHub signs the body alone, with no timestamp: a github hook refuses a body it
accepted before under another delivery ID (401 ``replayed_signature``), for as long as requests
are remembered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridgekit import DeliveryFailed, DeliveryInterrupted
from bridges.webhook.inbound import InboundPosts, now_ms
from bridges.webhook.ratelimit import RateLimiter, retry_after_header
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.signatures import Rejection, Scheme, request_digest, token_matches, verify
from bridges.webhook.store import ACTIVE, Added, Hook, InboundMessage, WebhookStore
from bridges.webhook.translate import PayloadError, parse_body, to_message

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"ok": False, "error": code, "message": message}, headers or {})


def split_path_segment(segment: str) -> tuple[str, str | None]:
    """``<hook id>.<token>`` (token hooks) or ``<hook id>`` (signed hooks)."""
    hook_id, dot, token = segment.partition(".")
    return hook_id, (token if dot else None)


def too_large(max_bytes: int) -> Answer:
    return error(413, "body_too_large", f"the body is larger than this bridge accepts ({max_bytes} bytes)")


@dataclass(frozen=True)
class Request:
    """What intake needs of an HTTP request (the route reads it; tests build it directly)."""

    path_segment: str
    headers: Mapping[str, str]
    body: bytes
    fields: dict[str, Any] | None = None
    """Fields already parsed by the route (multipart forms); None: parse ``body``."""


class Intake:
    def __init__(
        self, store: WebhookStore, settings: WebhookSettings, box: SecretBox, posts: InboundPosts,
        *, clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._settings = settings
        self._box = box
        self._posts = posts
        self._clock = clock
        self._limiter = RateLimiter(settings.rate_per_second, settings.rate_burst, monotonic)

    async def handle(self, request: Request) -> Answer:
        hook_id, token = split_path_segment(request.path_segment)
        hook = await self._store.hook(hook_id)
        if hook is None:
            return error(404, "unknown_hook", "there is no webhook at this URL (it may have been removed)")
        rejection = self._authenticate(hook, token, request)
        if rejection is not None:
            log.info("hook %s refused a request: %s", hook.id, rejection.code)
            return error(401, rejection.code, rejection.message)
        if hook.status != ACTIVE:
            return error(403, "hook_suspended", f"this webhook is suspended: {hook.suspended_reason or 'by the room'}; "
                         "a room admin can adopt it ('webhook adopt')")
        wait = self._limiter.take(hook.id)
        if wait > 0:
            retry_after = retry_after_header(wait)
            return error(429, "rate_limited", f"too many requests for this hook; retry after {retry_after} s",
                         {"Retry-After": retry_after})
        key = _idempotency_key(request.headers)
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            return error(400, "bad_idempotency_key", f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
        try:
            fields = request.fields if request.fields is not None else _parse(request)
            message = to_message(fields, github_event=_github_event(hook, request.headers))
        except PayloadError as problem:
            return error(problem.status, problem.code, str(problem))
        if message is None:
            return Answer(200, {"ok": True, "posted": False, "message": "pong: nothing to post"})
        digest = request_digest(Scheme(hook.scheme), request.headers, request.body)
        if key is None and digest is None:
            # Nothing for a later request to find (no key, no signed body): not stored here, the
            # core's outbox is the message's durable copy once it is emitted.
            unstored = InboundMessage(hook_id=hook.id, room_id=hook.room_id, message=message.to_json(),
                                      created_ms=now_ms(), state="pending", attempts=0)
            return await self._post_within_deadline(unstored, hook)
        row, added = await self._store.add_inbound(
            hook.id, key, hook.room_id, message.to_json(), now_ms(), body_digest=digest,
        )
        if added is Added.SAME_BODY and hook.scheme == Scheme.GITHUB.value:
            log.warning("hook %s refused a signed body it had accepted before (a replay)", hook.id)
            return error(401, "replayed_signature", "this signed body was accepted before: a replayed request")
        if added is Added.SAME_BODY:
            # A timestamped request sent again within its window (a sender's retry, or a captured
            # copy with another Idempotency-Key): the first answer, nothing posted twice.
            log.info("hook %s got a signed request it had accepted before; answered as a repeat", hook.id)
            return await self._replayed(row, hook)
        if added is Added.SAME_KEY:
            return await self._replayed(row, hook)
        return await self._post_within_deadline(row, hook)

    def _authenticate(self, hook: Hook, token: str | None, request: Request) -> Rejection | None:
        scheme = Scheme(hook.scheme)
        if scheme is Scheme.TOKEN:
            if token is None or hook.token_hash is None or not token_matches(token, hook.token_hash):
                return Rejection("bad_token", "the secret in the URL is wrong (it may have been rotated)")
            return None
        if hook.sealed_secret is None:
            return Rejection("no_secret", "this hook has no signing secret; rotate it to get one")
        try:
            secret = self._box.open(hook.sealed_secret, row=inbound_row(hook.id))
        except SecretBoxUnavailable:
            log.error("hook %s: its signing secret cannot be decrypted with the configured key", hook.id)
            return Rejection("secret_unavailable", "the bridge cannot check signatures right now")
        return verify(scheme, secret, request.headers, request.body, now=self._clock(),
                      window=self._settings.signature_window_seconds)

    async def _post_within_deadline(self, row: InboundMessage, hook: Hook, *, repeat: bool = False) -> Answer:
        """Emit the row (again, for a ``repeat``: the core answers with the event it became) and
        answer once it is in the room, or 202 at the deadline."""
        replayed = {"Idempotent-Replayed": "true"} if repeat else {}
        extra = {"duplicate": True} if repeat else {}
        task = self._posts.post(row, hook)
        done, _ = await asyncio.wait({task}, timeout=self._settings.answer_deadline_seconds)
        if not done or isinstance(task.exception(), DeliveryInterrupted):  # the bridge stops: posted at its start
            return Answer(202, {"ok": True, "queued": True, **extra,
                                "message": "accepted; it will be in the room shortly"}, replayed)
        failure = task.exception()
        if failure is not None and not isinstance(failure, DeliveryFailed):
            raise failure
        if failure is None and (event_id := task.result()) is not None:
            return Answer(200, {"ok": True, "event_id": event_id, **extra}, replayed)
        return error(502, "not_posted", "the message was accepted but could not be posted to the room", replayed)

    async def _replayed(self, row: InboundMessage, hook: Hook) -> Answer:
        """The first request's answer: recorded, or (its outcome not written yet) asked of the core."""
        headers = {"Idempotent-Replayed": "true"}
        if row.state == "sent" and row.event_id:
            return Answer(200, {"ok": True, "event_id": row.event_id, "duplicate": True}, headers)
        if row.state == "failed":
            return error(502, "not_posted", "this request was accepted before but could not be posted", headers)
        return await self._post_within_deadline(row, hook, repeat=True)


def _idempotency_key(headers: Mapping[str, str]) -> str | None:
    # GitHub sends the same delivery ID again when a delivery is redelivered.
    for name in ("Idempotency-Key", "X-GitHub-Delivery"):
        value = headers.get(name)
        if value:
            return value.strip()
    return None


def _github_event(hook: Hook, headers: Mapping[str, str]) -> str | None:
    event = headers.get("X-GitHub-Event")
    return event.strip() if event and hook.scheme in (Scheme.GITHUB.value, Scheme.TOKEN.value) else None


def _parse(request: Request) -> dict[str, Any]:
    return parse_body(request.headers.get("Content-Type", ""), request.body)


__all__ = ["Answer", "Intake", "Request", "error", "split_path_segment", "too_large"]
