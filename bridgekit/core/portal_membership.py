"""Matrix users joining and leaving portals: their own identity on the network follows.

- Leaving a portal, or being kicked or banned from it: their own session (puppet or virtual, never
  a new one, never the relay) leaves the chat (:class:`~bridgekit.connector.MembershipSession`).
- Joining one, when the connector's ``join_on_portal_join`` is true and the routing rule gives them
  an identity of their own: the session is opened (as a first message would) and joins the chat
  (:class:`~bridgekit.connector.JoiningSession`), so the other side sees who is listening. The
  opening runs beside the room's later events (it may wait for the network's connection pacing),
  and the join counts as handled once it is done; a leave before then voids it. The
  core then keeps a virtual session open while they are in one of the network's portals (the idle
  timeout, ``virtual_idle_minutes``, applies only when they are in none, or the setting is off).
  A display name change (join after join) and a join made by someone else (an invite accepted is
  the user's own) change nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bridgekit.connector import JoiningSession, MembershipSession, NetworkConnector, RemoteSession
from bridgekit.core.dispatcher import defer_done
from bridgekit.core.routing import Route, RouteKind
from bridgekit.core.sessions import Sessions
from bridgekit.events import MatrixEvent
from bridgekit.ids import ChatID, UserID
from bridgekit.store.portals import PortalRow

OWN_IDENTITIES = (RouteKind.PUPPET, RouteKind.VIRTUAL)


class PortalMembership:
    """See the module docstring; the callables are the router's (routing rule, session, name)."""

    def __init__(
        self, sessions: Sessions, connector: Callable[[str], NetworkConnector],
        route: Callable[[MatrixEvent, PortalRow], Awaitable[Route]],
        session: Callable[[RouteKind, str, UserID, str], Awaitable[RemoteSession]],
        display_name: Callable[[MatrixEvent], Awaitable[str]],
        own_session: Callable[[str, UserID], RemoteSession | None],
    ) -> None:
        self._sessions = sessions
        self._connector = connector
        self._route = route
        self._session = session
        self._display_name = display_name
        self._own_session = own_session
        self._pending: dict[tuple[str, UserID, str], object] = {}
        """Joins whose connection is still opening, by (network, user, room): a leave voids its
        room's, a new join replaces it."""

    async def follow(self, event: MatrixEvent, portal: PortalRow) -> None:
        membership = event.content.get("membership")
        if event.state_key is None:
            return
        if membership == "join":
            await self._joined(event, portal)
        elif membership in ("leave", "ban"):
            user = UserID(event.state_key)
            self._pending.pop((portal.network, user, event.room_id), None)  # a join still opening is void
            self._sessions.release(portal.network, user, event.room_id)
            session = self._own_session(portal.network, user)
            if session is not None and isinstance(session, MembershipSession):
                reason = event.content.get("reason")
                await session.leave_chat(ChatID(portal.remote_id), reason if isinstance(reason, str) else None)

    async def _joined(self, event: MatrixEvent, portal: PortalRow) -> None:
        previous = event.unsigned.get("prev_content")
        if event.state_key != event.sender or (isinstance(previous, dict) and previous.get("membership") == "join"):
            return
        if not getattr(self._connector(portal.network), "join_on_portal_join", False):
            return
        key = (portal.network, UserID(event.sender), event.room_id)
        token = self._pending[key] = object()
        # Routing opens the user's connection (to learn whether the network gives them one), and
        # opening waits for the network's connection pacing (2 a second by default): done in the
        # room's order, 1,000 joins held every later event of the room for minutes. It runs on
        # beside the room's next events instead; the join counts as handled (and a restart
        # replays it) only once it is done. The user's own first message waits for the same
        # opening, and joins the chat before it speaks, so nothing overtakes the join.
        joining = self._open_and_join(key, token, event, portal)
        if not defer_done(joining):
            await joining

    async def _open_and_join(
        self, key: tuple[str, UserID, str], token: object, event: MatrixEvent, portal: PortalRow,
    ) -> None:
        network, user, room_id = key
        try:
            route = await self._route(event, portal)
            if route.kind not in OWN_IDENTITIES:
                return  # relayed, or not allowed to bridge at all: no identity of their own to join with
            session = await self._session(route.kind, network, user, await self._display_name(event))
        finally:
            current = self._pending.get(key) is token
            if current:
                del self._pending[key]
        if not current:
            return  # they left (or joined again) while the connection opened: that event decides
        if isinstance(session, JoiningSession):
            self._sessions.hold(network, user, room_id)
            await session.join_chat(ChatID(portal.remote_id))


__all__ = ["PortalMembership"]
