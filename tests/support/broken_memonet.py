"""A deliberately broken memonet connector, for showing that the conformance kit catches it.

Its sessions do not report the IDs of what they send (``send`` returns None), and its listener
does not recognise its own sessions' messages: the network's echo of every relayed message comes
back into the room, the mistake the kit's echo check exists for.
"""

from __future__ import annotations

import dataclasses

from bridgekit import BridgeContext, MessageID, OutgoingMessage, SessionKind
from bridgekit.testing.memonet import Happening, MemonetConnector, MemonetSession


class ForgetfulSession(MemonetSession):
    async def send(self, message: OutgoingMessage) -> MessageID | None:
        await super().send(message)
        return None


class BrokenMemonetConnector(MemonetConnector):
    def __init__(self, ctx: BridgeContext) -> None:
        super().__init__(ctx)
        self._bot = ForgetfulSession(SessionKind.BOT, self.network, self._settings.bot_nick)

    async def _bridge(self, happening: Happening) -> None:
        await super()._bridge(dataclasses.replace(happening, by_bridge=False))
