"""The Matrix IDs of the bridge's ghosts: the naming rule of each connector section
(:func:`~bridgekit.naming.section_ghost_user_id`), except for ghosts made under an earlier rule.

Homeservers keep a ghost's ID forever, with its memberships, messages and power levels: a ghost
the bridge already made must keep its ID when the rule changes. The ``ghost`` table stores each
ghost's Matrix ID, so at start the core reads the IDs that differ from today's rule (ghosts of
sections with a default prefix, made when that prefix was followed by the connector's name once
more) and keeps using them; every new ghost gets the rule's ID. Parsing accepts both forms. A
connector that made ghosts itself before posting through the core (the webhook bridge's own
database) hands their IDs over once (``ctx.keep_ghost_id``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bridgekit.ids import UserID
from bridgekit.naming import prefix_names_network, section_ghost_user_id
from bridgekit.store.ghosts import GhostStore

log = logging.getLogger(__name__)


class GhostIDs:
    """The ghosts' Matrix IDs, per connector section (its name and ghost prefix)."""

    def __init__(self, prefixes: Mapping[str, str], server_name: str) -> None:
        self._prefixes = dict(prefixes)
        self._server_name = server_name
        self._kept: dict[tuple[str, str], UserID] = {}
        """(network, remote id) -> the ID of a ghost made under the earlier rule."""

    async def load(self, ghosts: GhostStore) -> int:
        """Remember the ghosts whose stored ID is not today's rule's; how many."""
        for network, prefix in self._prefixes.items():
            if not prefix_names_network(prefix, network):
                continue  # the rule did not change for this section
            for remote_id, user_id in (await ghosts.user_ids(network)).items():
                if user_id != self._rule(network, remote_id):
                    self._kept[(network, remote_id)] = UserID(user_id)
        if self._kept:
            log.info("%d ghosts keep the IDs they were made with (the connector's name after its prefix)",
                     len(self._kept))
        return len(self._kept)

    async def keep(self, ghosts: GhostStore, network: str, remote_id: str, user_id: UserID) -> UserID:
        """A ghost a connector made itself before keeps its ID (recorded in the ghost table);
        the ID the remote user's ghost has now (an earlier one stands)."""
        await ghosts.keep_user_id(network, remote_id, user_id)
        stored = (await ghosts.user_ids(network, remote_id)).get(remote_id)
        if stored is not None and stored != self._rule(network, remote_id):
            self._kept[(network, remote_id)] = UserID(stored)
        return self.user_id(network, remote_id)

    def user_id(self, network: str, remote_id: str) -> UserID:
        return self._kept.get((network, remote_id)) or self._rule(network, remote_id)

    def _rule(self, network: str, remote_id: str) -> UserID:
        return section_ghost_user_id(self._prefixes[network], network, remote_id, self._server_name)


__all__ = ["GhostIDs"]
