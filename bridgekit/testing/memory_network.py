"""memonet's network: chats of posts, accounts with passwords, and listeners told of everything.

It stands in for a real network's client library in the example connector
(:mod:`bridgekit.testing.memonet`): a connector author would not write this part. It lives in the
bridge's memory, has no sockets, and tells its listeners synchronously, inside the call that made
the change (as some client libraries do: the connector must cope with an echo arriving before
its ``send`` has returned).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException


@dataclass
class Post:
    """One message in a memonet chat, with what happened to it since."""

    id: str
    chat: str
    sender: str
    text: str
    reply_to: str | None = None
    edits: list[str] = field(default_factory=list)
    deleted: bool = False
    reactions: dict[str, set[str]] = field(default_factory=dict)
    """emoji -> who reacted with it."""

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "chat": self.chat, "sender": self.sender, "text": self.text, "reply_to": self.reply_to,
            "edits": list(self.edits), "deleted": self.deleted,
            "reactions": {emoji: sorted(who) for emoji, who in self.reactions.items() if who},
        }


@dataclass(frozen=True)
class Happening:
    """What the network tells its listeners: a post, an edit, a deletion or a reaction."""

    kind: str
    """post, edit, delete, reaction, typing or read."""
    chat: str
    actor: str
    post: Post | None = None
    text: str = ""
    emoji: str = ""
    removed: bool = False
    by_bridge: bool = False
    """Done through a bridge session (the connector need not bridge it back)."""


class MemoryNetwork:
    """Chats of posts, accounts with passwords, and listeners told of everything."""

    def __init__(self, accounts: dict[str, str] | None = None, chats: Sequence[str] = ()) -> None:
        self.accounts = dict(accounts or {})
        self.chats: dict[str, list[Post]] = {chat: [] for chat in chats}
        # IDs unique across restarts (the bridge's message map outlives this in-memory network:
        # a reused "m1" would look like an already-bridged message).
        self.boot = secrets.token_hex(3)
        self._ids = itertools.count(1)
        self._edit_ids = itertools.count(1)
        self._listeners: list[Callable[[Happening], None]] = []
        self.members: dict[str, set[str]] = {}
        """chat -> who is in it (those who joined; people who just talk are not listed)."""
        self.topics: dict[str, str] = {}
        self.avatars: dict[str, str] = {}
        """user -> the URL of their picture."""
        self.typing: dict[str, set[str]] = {}
        """chat -> who is typing there now."""
        self.read: dict[str, dict[str, str]] = {}
        """chat -> reader -> the last message they read."""
        self.failing_sends = 0
        """The next this many sends from bridge sessions fail (to show failures are visible)."""

    def listen(self, listener: Callable[[Happening], None]) -> None:
        self._listeners.append(listener)

    def find(self, chat: str, post_id: str) -> Post:
        for post in self.chats.get(chat, []):
            if post.id == post_id:
                return post
        raise HTTPException(404, f"no message {post_id} in {chat}")

    def say(self, chat: str, sender: str, text: str, *, reply_to: str | None = None, by_bridge: bool = False) -> Post:
        if by_bridge and self.failing_sends > 0:
            self.failing_sends -= 1
            raise ConnectionError("memonet refused the message (a failure asked for through the control API)")
        post = Post(f"m{self.boot}-{next(self._ids)}", chat, sender, text, reply_to)
        self.chats.setdefault(chat, []).append(post)
        self._tell(Happening("post", chat, sender, post, text, by_bridge=by_bridge))
        return post

    def edit(self, chat: str, post_id: str, sender: str, text: str, *, by_bridge: bool = False) -> str:
        post = self.find(chat, post_id)
        post.edits.append(text)
        edit_id = f"e{self.boot}-{next(self._edit_ids)}"
        self._tell(Happening("edit", chat, sender, post, text, emoji=edit_id, by_bridge=by_bridge))
        return edit_id

    def delete(self, chat: str, post_id: str, sender: str, *, by_bridge: bool = False) -> None:
        post = self.find(chat, post_id)
        post.deleted = True
        self._tell(Happening("delete", chat, sender, post, by_bridge=by_bridge))

    def react(self, chat: str, post_id: str, sender: str, emoji: str, *, removed: bool = False,
              by_bridge: bool = False) -> None:
        post = self.find(chat, post_id)
        who = post.reactions.setdefault(emoji, set())
        (who.discard if removed else who.add)(sender)
        self._tell(Happening("reaction", chat, sender, post, emoji=emoji, removed=removed, by_bridge=by_bridge))

    def membership(
        self, chat: str, sender: str, change: str, *, by: str | None = None, by_bridge: bool = False
    ) -> None:
        """``change``: join, leave, kick or ban (``by``: who kicked or banned)."""
        members = self.members.setdefault(chat, set())
        (members.add if change == "join" else members.discard)(sender)
        self._tell(Happening("member", chat, sender, text=by or "", emoji=change, by_bridge=by_bridge))

    def set_topic(self, chat: str, sender: str, topic: str, *, by_bridge: bool = False) -> None:
        self.topics[chat] = topic
        self._tell(Happening("topic", chat, sender, text=topic, by_bridge=by_bridge))

    def set_typing(self, chat: str, sender: str, typing: bool, *, by_bridge: bool = False) -> None:
        who = self.typing.setdefault(chat, set())
        (who.add if typing else who.discard)(sender)
        self._tell(Happening("typing", chat, sender, removed=not typing, by_bridge=by_bridge))

    def mark_read(self, chat: str, sender: str, post_id: str, *, by_bridge: bool = False) -> None:
        post = self.find(chat, post_id)
        self.read.setdefault(chat, {})[sender] = post_id
        self._tell(Happening("read", chat, sender, post, by_bridge=by_bridge))

    def _tell(self, happening: Happening) -> None:
        for listener in self._listeners:
            listener(happening)


__all__ = ["Happening", "MemoryNetwork", "Post"]
