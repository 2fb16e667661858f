"""What the IRC bridge keeps of a network across restarts, in its connector's key-value store:
the CASEMAPPING learnt at first connect, the nicks Matrix users chose, the long messages served by
link, and how far a message of several lines got (so a replay sends only the rest)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bridgekit import KeyValue, UserID

log = logging.getLogger(__name__)

PROGRESS_DAYS = 7
"""How long the progress of a message of several lines is kept: it only matters if the bridge
stops before the event is recorded handled, and the replay comes at the next start."""


@dataclass(frozen=True)
class Progress:
    """How far a message of several lines got: its lines as planned, and how many are settled."""

    lines: list[str]
    done: int


class IrcRecords:
    """One network's records; ``kv`` None (a hand-built context) keeps nothing."""

    def __init__(self, kv: KeyValue | None, network: str) -> None:
        self._kv = kv
        self._network = network

    async def get(self, key: str, default: Any) -> Any:
        return await self._kv.get(key, default) if self._kv is not None else default

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        if self._kv is not None:
            await self._kv.set(key, value, ttl_seconds=ttl_seconds)

    async def chosen_nick(self, user_id: UserID) -> str | None:
        wanted = await self.get(f"nick:{user_id}", None)
        return wanted if isinstance(wanted, str) else None

    async def choose_nick(self, user_id: UserID, nick: str) -> None:
        await self.set(f"nick:{user_id}", nick)

    async def keep_text(self, text_id: str, text: str, *, days: float) -> None:
        await self.set(f"text:{text_id}", {"text": text, "at": int(time.time())}, ttl_seconds=days * 86_400)

    async def text(self, text_id: str) -> str | None:
        stored = await self.get(f"text:{text_id}", None)
        if not isinstance(stored, dict) or not isinstance(stored.get("text"), str):
            return None
        return str(stored["text"])

    async def progress(self, key: str) -> Progress | None:
        stored = await self.get(f"progress:{key}", None)
        if not isinstance(stored, dict):
            return None
        lines, done = stored.get("lines"), stored.get("done")
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines) or not isinstance(done, int):
            return None
        return Progress(lines, done)

    async def record_progress(self, key: str, progress: Progress) -> None:
        try:
            await self.set(f"progress:{key}", {"lines": progress.lines, "done": progress.done},
                           ttl_seconds=PROGRESS_DAYS * 86_400)
        except Exception:
            # Only a crash before the event is recorded handled needs it (then some lines come twice).
            log.exception("%s: recording how far a message got failed", self._network)


__all__ = ["IrcRecords", "Progress"]
