"""SQL of puppet logins: who is logged in to which network, as whom, and how it is going.

One row per (network, Matrix user) in ``remote_session`` with kind ``puppet``. The credentials
column holds what the connector needs to reconnect, encrypted by the caller (``credentials.py``):
this module never sees them in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, delete, select, update

from bridgekit.store.engine import Database
from bridgekit.store.inbox import now_ms
from bridgekit.store.tables import matrix_user, remote_session
from bridgekit.store.upsert import insert_ignoring_conflicts, upsert

_SESSION: Table = remote_session
_USER: Table = matrix_user

PUPPET = "puppet"


@dataclass(frozen=True, slots=True)
class StoredLogin:
    network: str
    owner: str
    remote_user_id: str
    remote_name: str
    credentials: str | None
    """Encrypted; None when the login needs no secret to reconnect."""
    state: str
    state_error: str | None


def login_id(network: str, owner: str) -> str:
    return f"{PUPPET}:{network}:{owner}"


class LoginStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(
        self, network: str, owner: str, remote_user_id: str, remote_name: str, credentials: str | None, state: str
    ) -> None:
        """Store (or replace) ``owner``'s login to ``network``."""
        values: dict[str, object] = {
            "id": login_id(network, owner), "network": network, "kind": PUPPET, "owner_user_id": owner,
            "remote_user_id": remote_user_id, "remote_name": remote_name, "credentials": credentials,
            "state": state, "state_error": None, "created_at": now_ms(), "meta": {},
        }
        async with self._db.write() as conn:
            # The login belongs to a Matrix user row (foreign key); a user who never opened a
            # management room (logged in from a portal with the prefix) has none yet.
            await conn.execute(
                insert_ignoring_conflicts(self._db.dialect, _USER, ["user_id"]),
                {"user_id": owner, "created_at": now_ms()},
            )
            await conn.execute(upsert(self._db.dialect, _SESSION, ["id"], values))

    async def set_state(self, network: str, owner: str, state: str, error: str | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(_SESSION).where(_SESSION.c.id == login_id(network, owner))
                .values(state=state, state_error=error, last_active_at=now_ms())
            )

    async def remove(self, network: str, owner: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(_SESSION).where(_SESSION.c.id == login_id(network, owner)))
        return bool(result.rowcount)

    async def logins(self, owner: str | None = None) -> list[StoredLogin]:
        """Every puppet login (at start-up), or one user's."""
        query = select(
            _SESSION.c.network, _SESSION.c.owner_user_id, _SESSION.c.remote_user_id, _SESSION.c.remote_name,
            _SESSION.c.credentials, _SESSION.c.state, _SESSION.c.state_error,
        ).where(_SESSION.c.kind == PUPPET)
        if owner is not None:
            query = query.where(_SESSION.c.owner_user_id == owner)
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(_SESSION.c.network))).all()
        return [StoredLogin(*row) for row in rows]


__all__ = ["LoginStore", "StoredLogin", "login_id"]
