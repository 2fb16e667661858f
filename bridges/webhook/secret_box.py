"""Signing secrets encrypted at rest.

A signing secret must be kept in plain form to check signatures, unlike a URL token (stored as a
hash), so it is stored encrypted with Fernet under the admin's key (the connector's
``secrets_key``, else ``BRIDGEKIT_CREDENTIALS_KEY``). A database dump alone reveals no secret.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "BRIDGEKIT_CREDENTIALS_KEY"


class SecretBoxUnavailable(RuntimeError):
    """No key is configured: signed hooks cannot be created or checked."""


class SecretBox:
    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    @classmethod
    def from_settings(cls, key: str | None, environ: dict[str, str] | None = None) -> SecretBox:
        """The configured key, else the environment's; a malformed key stops the bridge (ValueError)."""
        env = os.environ if environ is None else environ
        chosen = key or env.get(KEY_ENV) or None
        try:
            return cls(chosen)
        except ValueError:
            raise ValueError(
                f"the webhook secrets key (secrets_key or {KEY_ENV}) must be 32 url-safe base64-encoded bytes; "
                "generate one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def _box(self) -> Fernet:
        if self._fernet is None:
            raise SecretBoxUnavailable(
                f"signed hooks need a key to encrypt their secrets: the bridge admin sets secrets_key in the "
                f"webhook connector's config (or {KEY_ENV})"
            )
        return self._fernet

    def seal(self, secret: str) -> str:
        return self._box().encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._box().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretBoxUnavailable("a stored signing secret cannot be decrypted with the configured key") from None


__all__ = ["SecretBox", "SecretBoxUnavailable"]
