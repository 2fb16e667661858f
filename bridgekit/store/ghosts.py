"""Ghost profiles: the display name and picture the bridge last gave each remote user's ghost.

Kept so that a profile is changed on Matrix only when the network's side changed (each change is
a request, and a member event in every room the ghost is in). Names are asked for every event a
ghost posts, so they are remembered in memory too; pictures only when an event carries one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, select

from bridgekit.store.engine import Database
from bridgekit.store.tables import ghost
from bridgekit.store.upsert import dialect_module

_GHOST: Table = ghost

CACHE_LIMIT = 100_000
"""Ghost names remembered before the memory starts over."""


@dataclass(frozen=True, slots=True)
class GhostProfile:
    """A ghost's profile as the network describes it (or as the bridge last set it)."""

    name: str | None = None
    """The display name; None: none (wanted), or never set (stored)."""
    avatar: str | None = None
    """Where the picture comes from (an ``https://`` URL or an ``mxc://`` URI); None: none."""


class GhostStore:
    """The ``ghost`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = dialect_module(db.dialect).insert
        self._names: dict[tuple[str, str], str | None] = {}

    async def profile(self, network: str, remote_id: str, *, with_avatar: bool) -> GhostProfile:
        """What was last applied to the ghost; the picture read only when asked for."""
        name = await self.ghost_name(network, remote_id)
        return GhostProfile(name, await self.ghost_avatar(network, remote_id) if with_avatar else None)

    async def ghost_name(self, network: str, remote_id: str) -> str | None:
        """The display name last set on the ghost, or None if none was set (remembered)."""
        key = (network, remote_id)
        if key in self._names:
            return self._names[key]
        async with self._db.read() as conn:
            name: str | None = (
                await conn.execute(
                    select(_GHOST.c.name).where(
                        _GHOST.c.network == network, _GHOST.c.remote_id == remote_id, _GHOST.c.name_set.is_(True)
                    )
                )
            ).scalar()
        if len(self._names) > CACHE_LIMIT:
            self._names.clear()
        self._names[key] = name
        return name

    async def ghost_avatar(self, network: str, remote_id: str) -> str | None:
        """The avatar source last applied to the ghost (a URL or mxc URI), or None."""
        async with self._db.read() as conn:
            return (
                await conn.execute(
                    select(_GHOST.c.avatar_id).where(_GHOST.c.network == network, _GHOST.c.remote_id == remote_id)
                )
            ).scalar()

    async def user_ids(self, network: str, remote_id: str | None = None) -> dict[str, str]:
        """remote id -> Matrix ID of each ghost of ``network`` the bridge made (or of one)."""
        query = select(_GHOST.c.remote_id, _GHOST.c.user_id).where(_GHOST.c.network == network)
        if remote_id is not None:
            query = query.where(_GHOST.c.remote_id == remote_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return {str(row.remote_id): str(row.user_id) for row in rows}

    async def keep_user_id(self, network: str, remote_id: str, user_id: str) -> bool:
        """Record a ghost made outside the core (a connector's own from before): False when the
        remote user or the Matrix ID has a ghost already (that one stands)."""
        statement = self._insert(_GHOST).values(network=network, remote_id=remote_id, user_id=user_id, meta={})
        async with self._db.write() as conn:
            inserted = await conn.execute(statement.on_conflict_do_nothing())
        return bool(inserted.rowcount)

    async def remember_name(self, network: str, remote_id: str, user_id: str, name: str) -> None:
        statement = self._insert(_GHOST).values(
            network=network, remote_id=remote_id, user_id=user_id, name=name, name_set=True, meta={}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_GHOST.c.network, _GHOST.c.remote_id], set_={"name": name, "name_set": True}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)
        self._names[(network, remote_id)] = name

    async def remember_avatar(self, network: str, remote_id: str, user_id: str, source: str, mxc: str | None) -> None:
        """Record that ``source`` was applied (or tried: a refused URL is not fetched again)."""
        statement = self._insert(_GHOST).values(
            network=network, remote_id=remote_id, user_id=user_id, avatar_id=source, avatar_mxc=mxc, meta={}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[_GHOST.c.network, _GHOST.c.remote_id], set_={"avatar_id": source, "avatar_mxc": mxc}
        )
        async with self._db.write() as conn:
            await conn.execute(statement)


__all__ = ["GhostProfile", "GhostStore"]
