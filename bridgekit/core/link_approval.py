"""Links that wait for the network's approval (a connector's :class:`~bridgekit.LinkApprover`).

The ``link`` command (and the provisioning API, which runs it) asked by someone who is not a
bridge admin, for a connector that approves links: the command answers at once that approval was
asked, and the approval runs in a task of its own, so the room's inbox is not held up for the
minutes it may take. The outcome is posted in the room, mentioning who asked; only an approval
links. One request per room and chat at a time; requests still waiting at shutdown are dropped
(asked again after the restart).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from bridgekit.connector import LinkApprover, NetworkConnector, PortalResolver
from bridgekit.ids import ChatID, RoomID, UserID

log = logging.getLogger(__name__)

Notify = Callable[[RoomID, str, str, UserID], Awaitable[None]]
"""(room, text, transaction key, user to mention): a notice from the bridge bot."""
Link = Callable[[str, str, RoomID], Awaitable[None]]
"""(network, canonical chat ID, room): store the portal (``RemoteDelivery.link_portal``)."""


class LinkApprovals:
    def __init__(self, connectors: Mapping[str, NetworkConnector], link: Link, notify: Notify) -> None:
        self._connectors = connectors
        self._link = link
        self._notify = notify
        self._waiting: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._ids = itertools.count(1)

    async def ask(self, network: str, chat: str, room_id: RoomID, user: UserID) -> str | None:
        """For a sender who is not a bridge admin: None when ``network`` approves no links (or
        names no such chat: the link path then says so), else what the command answers while
        the approval runs."""
        connector = self._connectors.get(network)
        if connector is None or not isinstance(connector, LinkApprover):
            return None
        chat_id = chat
        if isinstance(connector, PortalResolver):
            info = await connector.portal_for_alias(chat)
            if info is None:
                return None
            chat_id = info.chat_id
        key = (network, chat_id, room_id)
        if key in self._waiting:
            return f"Linking this room to {chat_id} on {network} is waiting for approval already."
        task = asyncio.create_task(self._decide(connector, network, chat_id, room_id, user))
        self._waiting[key] = task
        task.add_done_callback(lambda _task: self._waiting.pop(key, None))
        return (f"Linking this room to {chat_id} on {network} needs the approval of {network}'s side: "
                "asked. The answer will be posted here.")

    async def _decide(self, approver: LinkApprover, network: str, chat_id: str, room_id: RoomID, user: UserID) -> None:
        try:
            verdict = await approver.approve_link(user, ChatID(chat_id), room_id)
        except Exception:
            log.exception("%s: approving the link of %s to %s failed", network, room_id, chat_id)
            verdict = "the approval failed (the bridge's log says why)"
        if verdict is True:
            try:
                await self._link(network, chat_id, room_id)
                text = f"{user}: approved. This room is now the portal of {chat_id} on {network}."
            except Exception:
                log.exception("%s: linking %s to %s after approval failed", network, room_id, chat_id)
                text = f"{user}: approved, but linking failed (the bridge's log says why); send 'link' again."
        else:
            reason = verdict if isinstance(verdict, str) and verdict else "refused"
            text = f"{user}: linking this room to {chat_id} on {network} was not approved: {reason}."
        try:
            await self._notify(room_id, text, f"link-approval:{time.time_ns()}-{next(self._ids)}", user)
        except Exception:
            log.exception("telling %s the outcome of a link approval failed", room_id)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def stop(self) -> None:
        for task in list(self._waiting.values()):
            task.cancel()
        await asyncio.gather(*self._waiting.values(), return_exceptions=True)


__all__ = ["LinkApprovals"]
