"""Who posts a remote user's events on Matrix: the Matrix user logged in as them (double puppet),
when the bridge may act as that user and they are in the room; else their ghost, registered,
profiled (``core/ghost_profiles.py``) and joined as needed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bridgekit.core.ghost_profiles import ProfileApplier, prepare_profile
from bridgekit.errors import MatrixError
from bridgekit.ids import RoomID, UserID
from bridgekit.matrix import Intent, MatrixClient
from bridgekit.naming import ghost_user_id
from bridgekit.store.ghosts import GhostProfile

log = logging.getLogger(__name__)

DOUBLE_PUPPET_MARKER = "net.bridgekit.double_puppet_source"
"""Content key of events the bridge sent as a Matrix user (double puppet): the value is the
network. The core drops such events when the homeserver shows them back to it, so a puppet's
message from another client is not bridged back to the network it came from."""

OwnerLookup = Callable[[str, str], UserID | None]
"""(network, remote user ID) -> the Matrix user logged in as that remote user (a puppet)."""


class RemoteSenders:
    def __init__(
        self,
        matrix: MatrixClient,
        profiles: ProfileApplier,
        *,
        server_name: str,
        ghost_prefixes: Mapping[str, str],
        owner_of: OwnerLookup | None = None,
        double_puppet: MatrixClient | None = None,
        is_puppet_owner: Callable[[UserID], bool] | None = None,
    ) -> None:
        self._matrix = matrix
        self._profiles = profiles
        self._server_name = server_name
        self._ghost_prefixes = dict(ghost_prefixes)
        self._owner_of = owner_of
        self._double_puppet = double_puppet
        self._is_puppet_owner = is_puppet_owner

    @property
    def bot(self) -> Intent:
        return self._matrix.bot

    def ghost(self, network: str, sender_id: str) -> Intent:
        return self._matrix.intent(ghost_user_id(self._ghost_prefixes[network], network, sender_id, self._server_name))

    def is_ghost(self, user_id: str) -> bool:
        return user_id.startswith(tuple(f"@{prefix}" for prefix in self._ghost_prefixes.values()))

    def is_logged_in(self, network: str, sender_id: str) -> bool:
        """Whether a Matrix user is logged in as this remote user (their own account, not a ghost)."""
        return self._owner_of is not None and self._owner_of(network, sender_id) is not None

    async def sender(
        self, network: str, sender_id: str, sender_name: str | None, room_id: RoomID, *, avatar: str | None = None
    ) -> Intent:
        """Who posts for ``sender_id`` in ``room_id``, joined there. Events without a name (typing,
        receipts) keep the name the ghost has; a picture is applied only to a ghost."""
        owner = self._owner_of(network, sender_id) if self._owner_of is not None else None
        if owner is not None and self._double_puppet is not None:
            puppet = self._double_puppet.intent(owner)
            try:
                await puppet.ensure_joined(room_id)
                return puppet
            except MatrixError as error:
                log.info("cannot post as %s in %s (%s); posting through the ghost instead", owner, room_id, error)
        ghost = await self.profiled_ghost(network, sender_id, sender_name, avatar=avatar, fallback_name=sender_id)
        await ghost.ensure_joined(room_id)
        return ghost

    async def profiled_ghost(
        self, network: str, sender_id: str, sender_name: str | None, *, avatar: str | None = None,
        fallback_name: str | None = None,
    ) -> Intent:
        """The sender's ghost, registered, with the profile the network gives it (before it joins
        anything, so its joins show it)."""
        ghost = self.ghost(network, sender_id)
        await ghost.ensure_registered()
        stored = await self._profiles.stored(network, sender_id, with_avatar=avatar is not None)
        update = prepare_profile(stored, GhostProfile(sender_name, avatar), fallback_name=fallback_name)
        if not update.empty:
            await self._profiles.apply(ghost, network, sender_id, update)
        return ghost

    def marked(self, network: str, sender: Intent, content: dict[str, object]) -> dict[str, object]:
        """``content``, marked when sent as a real Matrix user, so its echo is not bridged back."""
        if self._double_puppet is not None and sender.client is self._double_puppet:
            content[DOUBLE_PUPPET_MARKER] = network
        return content

    def redactor(self, author: UserID) -> Intent:
        """Who redacts an event of ``author``: the author may always redact their own (a ghost
        its own, a Matrix user theirs through the double puppet); else the bot, by its power."""
        if self.is_ghost(author):
            return self._matrix.intent(author)
        if self._double_puppet is not None and self._is_puppet_owner is not None and self._is_puppet_owner(author):
            return self._double_puppet.intent(author)  # acting as a user only for those logged in
        return self._matrix.bot


__all__ = ["DOUBLE_PUPPET_MARKER", "OwnerLookup", "RemoteSenders"]
