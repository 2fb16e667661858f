"""Channel keys (``+k``): given with ``join <network> #chan key``, kept for every later JOIN of
the channel (the bot's and Matrix users' connections, at each rejoin and reconnect).

A key lets anyone who has it into the channel, so it is a secret: it is kept in the network's
records encrypted with the framework's :class:`~bridgekit.CredentialCipher` (the bridge's
credentials key), each value bound to its network and channel, so a database dump alone reveals
no key and a value copied to another channel's row is refused. In memory the keys of a network
are in ``IrcNetwork.keys``, where ``join_line`` reads them.
"""

from __future__ import annotations

import logging

from bridgekit import CredentialCipher, CredentialError
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 64
"""Servers cut keys far shorter (InspIRCd: 32); a longer one is a mistake, not a key."""
_PREFIX = "chankey:"


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a channel key (None: it can). RFC 2812's key grammar, minus the
    comma (which would give the next channel of the JOIN a key) and a leading ``:``."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"a key is 1 to {MAX_KEY_LENGTH} characters"
    if any(not (character.isascii() and character.isprintable()) or character in " ," for character in key):
        return "a key is printable ASCII without spaces or commas"
    if key.startswith(":"):
        return "a key must not start with ':'"
    return None


class ChannelKeys:
    """The keys of one network's channels; ``cipher`` None: no credentials key is configured,
    and keys are used for this JOIN only, never stored."""

    def __init__(self, records: IrcRecords, cipher: CredentialCipher | None, network: IrcNetwork) -> None:
        self._records = records
        self._cipher = cipher
        self._network = network

    @property
    def can_keep(self) -> bool:
        return self._cipher is not None

    def _row(self, chat_id: str) -> str:
        return f"irc_channel_key:{self._network.name}:{chat_id}"

    async def load(self) -> None:
        """Read the stored keys into the network (at start)."""
        if self._cipher is None:
            return
        stored = await self._records.get("chankeys", [])
        for chat_id in stored if isinstance(stored, list) else []:
            sealed = await self._records.get(f"{_PREFIX}{chat_id}", None)
            if not isinstance(sealed, str):
                continue
            try:
                key = self._cipher.decrypt(sealed, context=self._row(chat_id)).get("key")
            except CredentialError as error:
                log.warning("%s: the stored key of %s cannot be read (%s); join it again with its key",
                            self._network.name, chat_id, error)
                continue
            if isinstance(key, str) and key_problem(key) is None:
                self._network.keys[chat_id] = key

    async def remember(self, chat_id: str, key: str) -> bool:
        """Use ``key`` for the channel from now on; True when it is also stored (encrypted)."""
        self._network.keys[chat_id] = key
        if self._cipher is None:
            return False
        await self._records.set(f"{_PREFIX}{chat_id}", self._cipher.encrypt({"key": key}, context=self._row(chat_id)))
        stored = await self._records.get("chankeys", [])
        chats = stored if isinstance(stored, list) else []
        if chat_id not in chats:
            await self._records.set("chankeys", [*chats, chat_id])
        return True

    async def forget(self, chat_id: str) -> None:
        if self._network.keys.pop(chat_id, None) is None:
            return
        await self._records.set(f"{_PREFIX}{chat_id}", None)
        stored = await self._records.get("chankeys", [])
        kept = [chat for chat in stored if chat != chat_id] if isinstance(stored, list) else []
        await self._records.set("chankeys", kept)


__all__ = ["MAX_KEY_LENGTH", "ChannelKeys", "key_problem"]
