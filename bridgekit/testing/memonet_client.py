"""Acting on memonet from outside the bridge: its control API, as a person on the network would.

Used by tests and by the conformance kit's memonet driver; also what the tutorial shows with curl.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from bridgekit.testing.conformance import SeenMessage

Post = dict[str, Any]


class MemonetClient:
    """The ``/memonet`` control API of a running bridge."""

    def __init__(self, base_url: str, token: str, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(timeout=30)
        self._owns_http = http is None
        self._base = base_url.rstrip("/") + "/memonet"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, self._base + path, json=body, headers=self._headers)
        response.raise_for_status()
        return response.json()

    async def say(
        self, chat: str, sender: str, text: str, *, reply_to: str | None = None, avatar_url: str | None = None
    ) -> Post:
        post: Post = await self._call("POST", f"/chats/{chat}/messages",
                                      {"sender": sender, "text": text, "reply_to": reply_to, "avatar_url": avatar_url})
        return post

    async def edit(self, chat: str, post_id: str, sender: str, text: str) -> Post:
        body = {"sender": sender, "text": text}
        post: Post = await self._call("POST", f"/chats/{chat}/messages/{post_id}/edit", body)
        return post

    async def delete(self, chat: str, post_id: str, sender: str) -> Post:
        post: Post = await self._call("POST", f"/chats/{chat}/messages/{post_id}/delete", {"sender": sender})
        return post

    async def react(self, chat: str, post_id: str, sender: str, emoji: str, *, removed: bool = False) -> Post:
        post: Post = await self._call("POST", f"/chats/{chat}/messages/{post_id}/reactions",
                                      {"sender": sender, "emoji": emoji, "removed": removed})
        return post

    async def posts(self, chat: str) -> list[Post]:
        posts: list[Post] = await self._call("GET", f"/chats/{chat}/messages")
        return posts

    async def fail_sends(self, count: int) -> None:
        await self._call("POST", "/fail-sends", {"count": count})

    async def membership(self, chat: str, sender: str, change: str, *, by: str | None = None) -> None:
        await self._call("POST", f"/chats/{chat}/members", {"sender": sender, "change": change, "by": by})

    async def set_topic(self, chat: str, sender: str, topic: str) -> None:
        await self._call("POST", f"/chats/{chat}/topic", {"sender": sender, "text": topic})

    async def set_typing(self, chat: str, sender: str, typing: bool = True) -> None:
        await self._call("POST", f"/chats/{chat}/typing", {"sender": sender, "typing": typing})

    async def mark_read(self, chat: str, sender: str, message_id: str) -> None:
        await self._call("POST", f"/chats/{chat}/read", {"sender": sender, "message_id": message_id})

    async def presence(self, chat: str) -> dict[str, Any]:
        """``{"typing": [nick...], "read": {nick: message ID}}``."""
        state: dict[str, Any] = await self._call("GET", f"/chats/{chat}/presence")
        return state

    async def wait_for_presence(self, chat: str, predicate: Callable[[dict[str, Any]], bool],
                                within: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                state = await self.presence(chat)
                if predicate(state):
                    return state
                await asyncio.sleep(0.05)

    async def wait_for(self, chat: str, predicate: Callable[[Post], bool], within: float = 30.0) -> Post:
        """The first post of ``chat`` matching ``predicate``, polled until it exists (the network
        is inside the bridge process: there is nothing to subscribe to from here)."""
        async with asyncio.timeout(within):
            while True:
                for post in await self.posts(chat):
                    if predicate(post):
                        return post
                await asyncio.sleep(0.05)




class MemonetDriver:
    """The conformance kit's :class:`~bridgekit.testing.conformance.RemoteDriver` for memonet."""

    def __init__(self, client: MemonetClient) -> None:
        self.client = client

    async def say(self, chat: str, sender: str, text: str) -> str:
        return str((await self.client.say(chat, sender, text))["id"])

    async def edit(self, chat: str, message_id: str, sender: str, text: str) -> None:
        await self.client.edit(chat, message_id, sender, text)

    async def delete(self, chat: str, message_id: str, sender: str) -> None:
        await self.client.delete(chat, message_id, sender)

    async def messages(self, chat: str) -> list[SeenMessage]:
        return [
            SeenMessage(str(p["id"]), str(p["sender"]), str(p["text"]), tuple(p["edits"]), bool(p["deleted"]))
            for p in await self.client.posts(chat)
        ]

    async def fail_sends(self, count: int) -> None:
        await self.client.fail_sends(count)


__all__ = ["MemonetClient", "MemonetDriver", "Post"]
