"""Where connectors' signing keys come from (``ctx.signing_key``; see ``bridgekit/signing.py``).

With a credentials key configured, each key is derived from it (and from each previous key, so
links signed before a rotation still verify until they expire). Without one, a random key is made
the first time it is asked for and kept in the key-value table under a name no connector's own
``ctx.kv`` can reach, so it survives restarts; it is as secret as the database.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Sequence

from bridgekit.signing import KEY_BYTES, SigningKey, derive_key
from bridgekit.store.kv import KeyValueStore

STORED_KEYS_NAMESPACE = "bridgekit:signing-keys"
"""The ``network`` column of stored keys: not a connector name (those are [a-z0-9-]+)."""


class SigningKeys:
    """Answers ``ctx.signing_key(purpose)`` for every connector of the bridge."""

    def __init__(self, credentials_keys: Sequence[bytes], kv: KeyValueStore) -> None:
        """``credentials_keys``: the current credentials key's bytes first, then the previous
        keys' (empty when no key is configured)."""
        self._material = tuple(credentials_keys)
        self._kv = kv
        self._cache: dict[tuple[str, str], SigningKey] = {}
        self._lock = asyncio.Lock()

    async def signing_key(self, connector: str, purpose: str) -> SigningKey:
        async with self._lock:  # two first callers must not each store a key of their own
            key = self._cache.get((connector, purpose))
            if key is None:
                key = await self._make(connector, purpose)
                self._cache[(connector, purpose)] = key
            return key

    async def _make(self, connector: str, purpose: str) -> SigningKey:
        if self._material:
            current, *previous = (derive_key(m, connector=connector, purpose=purpose) for m in self._material)
            return SigningKey(current, tuple(previous))
        name = f"{connector}:{purpose}"
        stored = await self._kv.get(STORED_KEYS_NAMESPACE, name)
        if not isinstance(stored, str):
            stored = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
            await self._kv.set(STORED_KEYS_NAMESPACE, name, stored)
        return SigningKey(base64.urlsafe_b64decode(stored))


__all__ = ["STORED_KEYS_NAMESPACE", "SigningKeys"]
