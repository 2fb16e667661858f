"""The webhook connector's config section (``connectors.<name>`` in the bridge's config)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator

from bridgekit import AllowRule, parse_allow_rule


class WebhookSettings(BaseModel):
    """Every key is optional; ``public_url`` is what the hook URLs sent to users start with."""

    public_url: str = ""
    """The bridge's address as senders reach it (``https://bridge.example.org``), without a path.
    Empty: the URLs are shown as paths, to be prefixed by hand."""
    database: str = "sqlite+aiosqlite:///webhook.db"
    """The database earlier versions kept of their own: imported once, at the first start on the
    bridge's database (``legacy_import.py``), then never read again."""
    secrets_key: SecretStr | None = None
    """Fernet key (32 url-safe base64 bytes) encrypting signing secrets at rest; falls back to the
    ``BRIDGEKIT_CREDENTIALS_KEY`` environment variable (or the file ``BRIDGEKIT_CREDENTIALS_KEY_FILE``
    names). Without either, only token hooks exist."""
    previous_secrets_keys: list[SecretStr] = []
    """Keys used before ``secrets_key``: secrets sealed with them are still read, and sealed again
    with the current key at start-up (after which an old key can be dropped)."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    rate_per_second: Annotated[float, Field(gt=0)] = 1.0
    """Sustained requests per second per hook; more are refused with 429 and Retry-After."""
    rate_burst: Annotated[int, Field(gt=0)] = 20
    """Requests a hook may send at once before the sustained rate applies."""
    answer_deadline_seconds: Annotated[float, Field(ge=0)] = 5.0
    """How long a request waits for its message to be in the room (200 with the event ID) before
    it is answered 202 and delivery continues in the background."""
    idempotency_hours: Annotated[float, Field(ge=24)] = 48.0
    """How long an Idempotency-Key is remembered (at least a day)."""
    signature_window_seconds: Annotated[int, Field(gt=0)] = 300
    """Largest clock difference accepted on timestamped signatures (Slack, generic HMAC)."""
    max_ghosts_per_hook: Annotated[int, Field(ge=1)] = 50
    """Distinct sender names a virtual-user hook turns into ghosts; later names post bot-style."""
    inbound_max_attempts: Annotated[int, Field(ge=1)] = 6
    """No longer used (the core posts inbound messages, with its own retries); still accepted."""

    outbound_allow: list[str] = []
    """Addresses outbound hooks and avatar fetches may reach although they are private, loopback
    or link-local: CIDR networks (``10.1.0.0/16``), optionally with one port (``127.0.0.1:8080``,
    ``[::1]:8080``). Everything public is allowed."""
    outbound_max_attempts: Annotated[int, Field(ge=1)] = 12
    outbound_retry_base_seconds: Annotated[float, Field(gt=0)] = 2.0
    outbound_retry_cap_seconds: Annotated[float, Field(gt=0)] = 600.0
    outbound_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    avatar_max_bytes: Annotated[int, Field(gt=0)] = 2 * 1024 * 1024

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("outbound_allow")
    @classmethod
    def _valid_rules(cls, value: list[str]) -> list[str]:
        for rule in value:
            parse_allow_rule(rule)  # raises ValueError naming the rule
        return value

    def allow_rules(self) -> tuple[AllowRule, ...]:
        return tuple(parse_allow_rule(rule) for rule in self.outbound_allow)


__all__ = ["WebhookSettings"]
