"""What the connector holds once started; commands and routes reach it through a getter."""

from __future__ import annotations

from dataclasses import dataclass

from bridgekit import BridgeContext, GuardedHTTP
from bridges.webhook.secret_box import SecretBox
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import WebhookStore


@dataclass(frozen=True)
class Runtime:
    ctx: BridgeContext
    settings: WebhookSettings
    store: WebhookStore
    box: SecretBox
    http: GuardedHTTP


__all__ = ["Runtime"]
