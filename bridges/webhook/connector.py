"""The webhook bridge: HTTP requests post into Matrix rooms, and rooms' messages go out as HTTP.

Composition only: the settings, the store (the connector's tables in the bridge's database), the
inbound intake (posting through ``ctx.emit``), the outbound deliverer (jobs of ``ctx.jobs``), the
routes and the commands are built and wired here. See docs/webhook.md for the admin's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import httpx
from fastapi import APIRouter

from bridgekit import BridgeContext, Command, GuardedHTTP, MatrixEvent, new_http_client
from bridges.webhook.commands import Runtime, webhook_command
from bridges.webhook.departures import suspend_departed, suspend_hooks_of
from bridges.webhook.inbound import InboundPosts, link_rooms
from bridges.webhook.intake import Intake
from bridges.webhook.legacy_import import import_legacy_database
from bridges.webhook.outbound import OutboundDeliverer
from bridges.webhook.routes import build_router
from bridges.webhook.secret_box import SecretBox
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import WebhookStore
from bridges.webhook.tables import WEBHOOK_TABLES

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0


class WebhookConnector:
    Settings = WebhookSettings
    tables = WEBHOOK_TABLES

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self._requests = ctx.metrics.counter("webhook_requests", "Webhook requests by outcome: posted, queued, "
                                             "duplicate, pong, or the error code answered", ["outcome"])
        settings: WebhookSettings = ctx.settings
        if not settings.public_url and ctx.public_url:
            # The bridge's own appservice.public_url, unless the hooks live elsewhere.
            settings = settings.model_copy(update={"public_url": ctx.public_url.rstrip("/")})
        self.settings = settings
        self._runtime: Runtime | None = None
        self._intake: Intake | None = None
        self._posts: InboundPosts | None = None
        self._outbound: OutboundDeliverer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        """Pruning old requests, and the start-up check of hook creators."""
        self._http_client: httpx.AsyncClient | None = None  # opened by start(): building one does no I/O

    # -- optional abilities, asked for before start ----------------------------------------------

    def http_router(self) -> APIRouter:
        return build_router(lambda: self._intake, self.settings.max_body_bytes,
                            lambda outcome: self._requests.inc(outcome=outcome))

    def commands(self) -> Sequence[Command]:
        return [webhook_command(lambda: self._runtime)]

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        ctx, settings = self.ctx, self.settings
        secret = settings.secrets_key.get_secret_value() if settings.secrets_key else None
        box = SecretBox.from_settings(secret, [key.get_secret_value() for key in settings.previous_secrets_keys])
        store = WebhookStore(ctx.database)
        imported = await import_legacy_database(ctx, settings.database)
        if box.available and (resealed := await store.reseal_secrets(box)):
            log.info("sealed %d webhook signing secrets again with the current key", resealed)
        await link_rooms(ctx, await store.hook_rooms())
        self._http_client = new_http_client()
        http = GuardedHTTP(self._http_client, settings.allow_rules())
        runtime = Runtime(ctx, settings, store, box, http)
        self._posts = InboundPosts(ctx, store, settings, http)
        self._outbound = OutboundDeliverer(ctx, store, settings, http, box)
        self._outbound.register()
        self._runtime = runtime
        self._intake = Intake(store, settings, box, self._posts)
        resumed = await self._posts.resume()
        self._tasks = [asyncio.create_task(self._prune_forever(store, settings), name="webhook-prune"),
                       asyncio.create_task(self._check_creators(runtime), name="webhook-creators")]
        if not settings.public_url:
            log.warning("neither appservice.public_url nor connectors.%s.public_url is set: hook URLs are shown "
                        "as paths only", ctx.name)
        if not box.available:
            log.warning("no webhook secrets key is set: only token hooks can be created (see docs/webhook.md)")
        log.info("webhook bridge started (%d accepted messages resumed%s)", resumed,
                 ", webhook.db imported" if imported else "")

    async def stop(self) -> None:
        self._intake = None
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._posts is not None:
            await self._posts.stop()
        if self._http_client is not None:
            await self._http_client.aclose()

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        """Room messages go to the room's outbound hooks; a hook creator who leaves (or is kicked
        or banned from) the room has their hooks suspended.

        The core hands every room event of a room the bot is in to the connectors, portal or not
        (membership changes too, after its own routing of portal leaves), so the leave arrives
        here in the room's order, after any command the creator sent before leaving."""
        runtime = self._runtime
        if runtime is None or self._outbound is None:
            raise RuntimeError("the webhook connector has not started yet")  # the core retries
        if event.type == "m.room.member":
            await suspend_hooks_of(runtime.ctx, runtime.store, event)
        else:
            await self._outbound.queue_event(event)

    @staticmethod
    async def _check_creators(runtime: Runtime) -> None:
        # In the background: one request per (room, creator), not worth holding up the start.
        try:
            gone = await suspend_departed(runtime.ctx, runtime.store)
        except Exception:
            log.exception("could not check whether the creators of webhooks are still in their rooms")
            return
        if gone:
            log.info("%d webhook creators had left their rooms: their hooks are suspended", gone)

    async def _prune_forever(self, store: WebhookStore, settings: WebhookSettings) -> None:
        while True:
            cutoff = int((time.time() - settings.idempotency_hours * 3600) * 1000)
            try:
                await store.prune_inbound(cutoff)
            except Exception:
                log.exception("could not prune old webhook requests")
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


__all__ = ["WebhookConnector"]
