"""Signing secrets encrypted at rest, with the framework's :class:`~bridgekit.CredentialCipher`.

A signing secret must be kept in plain form to check signatures, unlike a URL token (stored as a
hash), so it is stored encrypted under the admin's key (the connector's ``secrets_key``, else
``BRIDGEKIT_CREDENTIALS_KEY`` or the file ``BRIDGEKIT_CREDENTIALS_KEY_FILE`` names). A database
dump alone reveals no secret. The cipher gives each stored value:

- the ID of the key that wrote it, so ``previous_secrets_keys`` keep old rows readable while the
  start-up pass (:meth:`SecretBox.needs_reseal`, ``WebhookStore.reseal_secrets``) moves them to the
  current key;
- a binding to its row (``webhook_hook:<id>``, ``webhook_outbound:<id>``): a secret copied
  into another hook's row is refused, not used.

Rows written before (a bare Fernet token under the same kind of key, without key ID or binding)
are still read, with the current or a previous key, and resealed at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bridgekit import ConfigError, CredentialCipher, CredentialError, load_key

KEY_ENV = "BRIDGEKIT_CREDENTIALS_KEY"
_CIPHER_FORMAT = "v1:"


class SecretBoxUnavailable(RuntimeError):
    """No key is configured, or a stored secret cannot be read with the configured keys."""


def inbound_row(hook_id: str) -> str:
    """What an inbound hook's secret is bound to."""
    return f"webhook_hook:{hook_id}"


def outbound_row(hook_id: str) -> str:
    """What an outbound hook's secret is bound to."""
    return f"webhook_outbound:{hook_id}"


class SecretBox:
    def __init__(self, key: str | None, previous: Sequence[str] = ()) -> None:
        if isinstance(previous, str):
            raise TypeError("previous is a sequence of keys, not one key")
        self._cipher = CredentialCipher(key, previous) if key else None
        # The format before key IDs: bare Fernet tokens, readable with any of the same keys.
        self._legacy = MultiFernet([Fernet(k.strip().encode()) for k in (key, *previous) if k]) if key else None

    @classmethod
    def from_settings(
        cls, key: str | None, previous: Sequence[str] = (), environ: Mapping[str, str] | None = None,
    ) -> SecretBox:
        """The configured key, else the environment's; a malformed key stops the bridge (ValueError)."""
        env = os.environ if environ is None else environ
        try:
            chosen = load_key(configured=key or None, environ={} if key else env)
        except ConfigError as error:
            if "no credentials key" in str(error):
                return cls(None)
            raise ValueError(f"the webhook secrets key (secrets_key or {KEY_ENV}): {error}") from None
        try:
            return cls(chosen, previous)
        except ConfigError as error:
            raise ValueError(f"connectors.<webhook>.previous_secrets_keys: {error}") from None

    @property
    def available(self) -> bool:
        return self._cipher is not None

    def _keys(self) -> tuple[CredentialCipher, MultiFernet]:
        if self._cipher is None or self._legacy is None:
            raise SecretBoxUnavailable(
                f"signed hooks need a key to encrypt their secrets: the bridge admin sets secrets_key in the "
                f"webhook connector's config (or {KEY_ENV})"
            )
        return self._cipher, self._legacy

    def seal(self, secret: str, *, row: str) -> str:
        """``secret`` encrypted with the current key, bound to ``row``."""
        cipher, _ = self._keys()
        return cipher.encrypt({"secret": secret}, context=row)

    def open(self, sealed: str, *, row: str) -> str:
        """The secret :meth:`seal` was given for ``row`` (or an older bare Fernet token)."""
        cipher, legacy = self._keys()
        try:
            if not sealed.startswith(_CIPHER_FORMAT):
                return legacy.decrypt(sealed.encode()).decode()
            secret = cipher.decrypt(sealed, context=row).get("secret")
        except (CredentialError, InvalidToken) as error:
            reason = str(error) if isinstance(error, CredentialError) else "no configured key opens it"
            raise SecretBoxUnavailable(f"a stored signing secret cannot be read: {reason}") from None
        if not isinstance(secret, str):
            raise SecretBoxUnavailable("a stored signing secret cannot be read: it holds no secret")
        return secret

    def needs_reseal(self, sealed: str) -> bool:
        """True when ``sealed`` is in the old format or was written with a previous key."""
        cipher, _ = self._keys()
        return not sealed.startswith(_CIPHER_FORMAT) or cipher.needs_rotation(sealed)


__all__ = ["SecretBox", "SecretBoxUnavailable", "inbound_row", "outbound_row"]
