"""The conformance kit's RemoteDriver for IRC: a person in the channel with a plain IRC client.

IRC has no message IDs, edits or deletions, and nothing the test can do makes the server refuse
the bridge's lines: the driver says so (``can_edit``...), and the kit skips those checks."""

from __future__ import annotations

from bridgekit.demo.irc_client import IrcTestClient
from bridgekit.testing.conformance import SeenMessage


class IrcDriver:
    can_edit = False
    can_delete = False
    can_fail_sends = False

    def __init__(self, client: IrcTestClient, channel: str) -> None:
        self.client = client
        self.channel = channel
        self._said: list[tuple[float, SeenMessage]] = []

    async def say(self, chat: str, sender: str, text: str) -> str:
        await self.client.privmsg(self.channel, text)
        message_id = f"said-{len(self._said)}"
        # The server does not echo our own lines: the driver remembers them, timed like the rest.
        marker = self.client.received[-1].received_at if self.client.received else 0.0
        self._said.append((marker, SeenMessage(message_id, self.client.nick, text)))
        return message_id

    async def edit(self, chat: str, message_id: str, sender: str, text: str) -> None:
        raise NotImplementedError("IRC has no edits")

    async def delete(self, chat: str, message_id: str, sender: str) -> None:
        raise NotImplementedError("IRC has no deletions")

    async def messages(self, chat: str) -> list[SeenMessage]:
        heard = [
            (line.received_at, SeenMessage(f"line-{number}", line.source or "", line.text))
            for number, line in enumerate(self.client.received)
            if line.command == "PRIVMSG" and line.target == self.channel
        ]
        return [message for _at, message in sorted([*heard, *self._said], key=lambda pair: pair[0])]

    async def fail_sends(self, count: int) -> None:
        raise NotImplementedError("the test cannot make an IRC server refuse the bridge's lines")
