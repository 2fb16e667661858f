"""``ctx.kv``: the key-value store (``store/kv.py``) bound to one connector's name."""

from __future__ import annotations

from typing import Any

from bridgekit.store.kv import KeyValueStore


class ConnectorKeyValue:
    def __init__(self, store: KeyValueStore, network: str) -> None:
        self._store = store
        self._network = network

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._store.get(self._network, key, default)

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        await self._store.set(self._network, key, value, ttl_seconds=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._store.delete(self._network, key)


__all__ = ["ConnectorKeyValue"]
