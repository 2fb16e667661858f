"""A remote identity on IRC: the network's bot (relay) or a Matrix user's own connection.

Everything a session says goes through :meth:`IrcSession.say`, the one output gate: Matrix HTML
becomes IRC formatting, the text is sanitised (no CR, LF or NUL reaches the wire as a command),
split by UTF-8 bytes at word boundaries so that every line as other clients receive it fits 512
bytes, and a message longer than the portal's line limit becomes one line with a link to the full
text, served by the bridge.

``send`` queues the lines and returns :class:`~bridgekit.Accepted` with their delivery, which
finishes once every line is settled (echoed by the server, refused by it, or written when the
server does not echo): the core counts the Matrix event handled only then, so a crash while the
lines wait behind the pacing replays the event. How far a message of several lines got is kept in
the network's records (``records.py``), line by line, so the replay sends only the rest.
"""

from __future__ import annotations

import asyncio
import difflib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridgekit import Accepted, MessageID, OutgoingMessage, SessionKind, UserID
from bridges.irc import lines
from bridges.irc.formatting_from_matrix import matrix_to_irc, strip_reply_fallback
from bridges.irc.http_routes import IrcRoutes
from bridges.irc.link_protocol import Link
from bridges.irc.network import IrcNetwork, Said
from bridges.irc.outgoing import OutLine
from bridges.irc.output_gate import cut_bytes, line_budget, one_line, plan, sanitize, split_lines
from bridges.irc.records import IrcRecords, Progress
from bridges.irc.settings import IrcSettings

PART_REASON_BYTES = 200


@dataclass(frozen=True)
class SessionSetup:
    """What every session of a network shares: the network's state, the settings that shape
    what is said, where the progress of long messages is kept, and the links for long messages
    and files."""

    network: IrcNetwork
    settings: IrcSettings
    records: IrcRecords
    routes: IrcRoutes


class IrcSession:
    def __init__(
        self, kind: SessionKind, link: Link, setup: SessionSetup, *, owner: UserID | None = None,
        on_close: Callable[[IrcSession], Awaitable[None]] | None = None,
        on_reconnect: Callable[[IrcSession], Awaitable[None]] | None = None,
    ) -> None:
        """``on_close`` and ``on_reconnect`` tell the connector, which keeps its users' sessions."""
        self.kind = kind
        self.link = link
        self.owner = owner
        self._network = setup.network
        self._settings = setup.settings
        self._records = setup.records
        self._routes = setup.routes
        self._on_close = on_close
        self._on_reconnect = on_reconnect
        self.joined: set[str] = set()
        self.last_sender: dict[str, UserID] = {}
        """Per chat, the Matrix user whose message this connection sent last (for the bot: whom
        it relayed), to tell them when the server refuses it."""
        self._reconnecting = asyncio.Lock()
        """Held while the connection is made again, and by every ``say``: nothing is said between
        the new connection's welcome and its rejoins."""
        self.closed = False
        """Closed on purpose (idle, logout, shutdown): its disconnect is no news to its owner."""

    @property
    def nick(self) -> str:
        return self.link.nick

    # ---- RemoteSession -------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> Accepted:
        self.last_sender[message.chat_id] = message.sender
        text = self._irc_text(message)
        if message.reply_to is not None:
            text = self._with_reply(message.reply_to, text)
        command: lines.MessageCommand = "NOTICE" if message.msgtype == "m.notice" else "PRIVMSG"
        delivered = await self._queue(message.chat_id, text, command=command, action=message.msgtype == "m.emote",
                                      key=message.event_id)
        message_id = MessageID(f"bk-{secrets.token_hex(8)}")
        self._network.remember(message_id, Said(self.nick, text))
        return Accepted(message_id, delivered)

    async def edit(self, chat_id: str, message_id: str, message: OutgoingMessage) -> None:
        policy = self._settings.edits
        if policy == "ignore":
            return
        new_text = self._irc_text(message)
        before = self._network.recall(message_id)
        shown = new_text
        if policy == "diff" and before is not None:
            shown = _changed_words(before.text, new_text) or new_text
        await self.say(chat_id, f"* {shown}", key=message.event_id)
        self._network.remember(message_id, Said(self.nick, new_text))

    async def leave_chat(self, chat_id: str, reason: str | None) -> None:
        channel = self._network.channel_name(chat_id)
        if chat_id in self.joined and self.link.connected:  # a dropped connection is in no channel
            said = one_line(reason, PART_REASON_BYTES) if reason else ""  # a line break would end the PART early
            self.link.send(lines.part(channel, said))
            self.joined.discard(chat_id)

    async def join_chat(self, chat_id: str) -> None:
        """The Matrix user joined the portal (``join_on_portal_join``): join before speaking."""
        if not chat_id.startswith("pm:"):
            self._ensure_joined(chat_id)

    async def set_topic(self, chat_id: str, topic: str) -> None:
        self._ensure_joined(chat_id)
        flat = " ".join(sanitize(topic).split("\n"))
        channel = self._network.channel_name(chat_id)
        budget = line_budget(nick=self.nick, ident=self.link.ident, host=None, target=channel, command="TOPIC")
        self.link.send(lines.topic(channel, cut_bytes(flat, budget)))

    async def close(self) -> None:
        self.closed = True
        await self.link.close("idle" if self.kind is SessionKind.VIRTUAL else "")
        if self._on_close is not None:
            await self._on_close(self)

    # ---- the output gate --------------------------------------------------------------------

    async def say(
        self, chat_id: str, text: str, *, command: lines.MessageCommand = "PRIVMSG", action: bool = False,
        key: str | None = None,
    ) -> None:
        """Send ``text`` (IRC formatting allowed, newlines allowed) to the chat, safely, and return
        once every line is settled."""
        await (await self._queue(chat_id, text, command=command, action=action, key=key))

    async def _queue(
        self, chat_id: str, text: str, *, command: lines.MessageCommand = "PRIVMSG", action: bool = False,
        key: str | None = None,
    ) -> Awaitable[object]:
        """Queue the lines of ``text``; returns their delivery (see :meth:`_delivered`). ``key``
        (the Matrix event's ID) names the progress of a message of several lines: queued again
        after a crash, only the lines not yet settled go out."""
        async with self._reconnecting:
            if not self.link.connected and self.kind is not SessionKind.BOT:
                # The server dropped this user's connection: connect again (it rejoins as it speaks).
                await self._reconnect_locked()
            target = self._network.target_of(chat_id)
            if self.link.state.is_channel(target):
                self._ensure_joined(chat_id)
            budget = line_budget(nick=self.nick, ident=self.link.ident, host=None, target=target, command=command,
                                 action=action)
            planned = await self._plan(text, budget)
            # Only a message of several lines has progress to look up (no read for one line).
            before = await self._records.progress(key) if key is not None and len(planned) > 1 else None
            if before is not None:
                # The lines as first planned (the nick, and so the budget, may differ now).
                planned = [piece for line in before.lines[before.done:] for piece in split_lines(line, budget)]
            # Each line's idempotency key (event ID and line index): a keeper sends it only once.
            first = before.done if before is not None else 0
            settling = [self.link.send_tracked(lines.message(command, target, line, action=action),
                                               key=None if key is None else f"{key}/{first + index}")
                        for index, line in enumerate(planned)]
        if key is None or (before is None and len(planned) < 2):
            # Nothing to record: the futures themselves (no task per message on the hot path).
            return settling[0] if len(settling) == 1 else asyncio.gather(*settling)
        done = before.done if before is not None else 0
        return self._delivered(key, (before.lines[:done] if before is not None else []) + planned, done, settling)

    async def _delivered(self, key: str, planned: list[str], done: int, settling: list[asyncio.Future[None]]) -> None:
        """Wait for the lines ``planned[done:]`` (``settling``) in order, recording how many of
        ``planned`` are settled as they are. Awaited outside the session's lock: a dropped
        connection hands these lines to the next one, and making it (``reconnect``) takes it."""
        for index, settled in enumerate(settling):
            await settled
            if index + 1 < len(settling) and settling[index + 1].done():
                continue  # several lines settled at once: one write records them
            await self._records.record_progress(key, Progress(planned, done + index + 1))

    async def _plan(self, text: str, budget: int) -> list[str]:
        planned = plan(text, budget, self._settings.max_lines)
        if not planned.truncated:
            return planned.lines
        url = await self._routes.publish_text(sanitize(text))
        suffix = f" … (full message: {url})" if url else " … (message too long for IRC)"
        return [planned.lines[0] + suffix]

    async def reconnect(self) -> None:
        """Connect this identity again after the server dropped it; the lines it had queued
        (pacing) go out once it has rejoined their channels."""
        async with self._reconnecting:
            if not self.link.connected:
                await self._reconnect_locked()

    async def _reconnect_locked(self) -> None:
        unsent = self.link.take_unsent()
        self.joined.clear()  # a dropped connection is in no channel
        try:
            await self.link.connect()
            if self._on_reconnect is not None:
                await self._on_reconnect(self)
        except BaseException:
            self.link.requeue(unsent)
            raise
        self.adopt(unsent)

    def adopt(self, unsent: list[OutLine]) -> None:
        """Send the lines an earlier connection of this identity queued but never wrote (it
        dropped), in order, joining their channels again first. Should this connection drop too
        meanwhile, the lines not passed on go back in its queue, futures and all, for the next
        one: a line lost here would leave its message's delivery, and so its room's progress,
        waiting for ever."""
        for index, line in enumerate(unsent):
            command, target = line.line.command, line.line.target or ""
            channel = self.link.state.is_channel(target)
            try:
                if command == "JOIN" and channel:
                    self.joined.add(self._network.fold(target))
                elif channel and command in ("PRIVMSG", "NOTICE", "TOPIC"):
                    self._ensure_joined(self._network.fold(target))
                self.link.pass_on(line)
            except ConnectionError:
                self.link.requeue(unsent[index:])
                raise

    def _ensure_joined(self, chat_id: str) -> None:
        if chat_id not in self.joined:
            # The server handles JOIN before the PRIVMSG that follows it on the same connection.
            self.link.send(self._network.join_line(chat_id))
            self.joined.add(chat_id)

    def _irc_text(self, message: OutgoingMessage) -> str:
        if message.media is not None:
            link = self._routes.media_link(message.media.mxc, message.media.filename)
            size = f", {_size(message.media.size)}" if message.media.size is not None else ""
            name = message.media.filename
            described = f"{name} ({message.msgtype.removeprefix('m.')}{size})"
            # Through the relay the text is "<alice> photo.png": keep its prefix.
            relay = message.text[: -len(name)] if message.text.endswith(name) else ""
            return f"{relay}{described}" + (f" {link}" if link else "")
        if message.html is not None:
            return matrix_to_irc(message.html, pill_to_nick=self._network.pill_to_nick)
        return strip_reply_fallback(message.text)

    def _with_reply(self, reply_to: str, text: str) -> str:
        original = self._network.recall(reply_to)
        if original is None:
            return text
        if self._settings.reply_template == "long":
            excerpt = original.text if len(original.text) <= 40 else original.text[:37].rstrip() + "…"
            return f'<{original.nick}> "{excerpt}" <- {text}'
        return f"{original.nick}: {text}"


def _changed_words(before: str, after: str) -> str:
    """The words of ``after`` that differ from ``before`` (a Matrix edit as IRC users expect it:
    ``* corrected``); empty when the edit changed nothing visible."""
    old, new = before.split(), after.split()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    changed = [" ".join(new[j1:j2]) for tag, _i1, _i2, j1, j2 in matcher.get_opcodes() if tag in ("replace", "insert")]
    changed = [part for part in changed if part]
    if not changed or sum(len(part) for part in changed) > len(after) * 0.6:
        return after if changed else ""
    return " … ".join(changed)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


__all__ = ["IrcSession", "Progress", "Said", "SessionSetup"]
