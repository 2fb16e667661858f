"""Who says an inbound message in the room: the bridge bot, or a ghost for the sender's name.

Pure decisions. A hook has an identity style: ``bot`` (the bridge bot posts ``**name**: text``)
or ``ghosts`` (each distinct ``username`` gets a ghost of its own, scoped to the hook, named and
pictured as the payload says). Ghosts per hook are bounded: past the limit new names are posted
bot-style, so a sender cycling through random names cannot register users without end.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass


class IdentityStyle(enum.Enum):
    BOT = "bot"
    GHOSTS = "ghosts"


@dataclass(frozen=True)
class Speaker:
    name: str
    """The display name: the ghost's, or the bold name in a bot-style line."""
    sender_id: str | None
    """For a ghost, the remote ID the core names it after (:func:`ghost_sender_id`); None when
    the bot speaks."""


def name_key(name: str) -> str:
    """A stable, short key of a sender name (names are case-sensitive: ``Bob`` is not ``bob``)."""
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def ghost_sender_id(hook_id: str, name: str) -> str:
    """``{hook}.{key}``: only ``[a-z0-9.]`` so bridgekit's escaping leaves it as it is, and the
    hook ID keeps two hooks' "bob" apart."""
    return ghost_sender_id_of(hook_id, name_key(name))


def ghost_sender_id_of(hook_id: str, key: str) -> str:
    """The sender ID of a ghost row (hook and name key)."""
    return f"{hook_id}.{key}"


def choose_speaker(
    style: IdentityStyle, *, hook_id: str, hook_name: str, username: str | None,
    known_ghost: bool, ghost_count: int, max_ghosts: int,
) -> Speaker:
    """The speaker of a message with ``username`` (None: the sender gave none, the hook's name)."""
    name = username or hook_name
    if style is IdentityStyle.BOT or (not known_ghost and ghost_count >= max_ghosts):
        return Speaker(name, None)
    return Speaker(name, ghost_sender_id(hook_id, name))


__all__ = ["IdentityStyle", "Speaker", "choose_speaker", "ghost_sender_id", "ghost_sender_id_of", "name_key"]
