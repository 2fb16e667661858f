"""chatnet: a tiny chat network for end-to-end tests of the session modes (relay, virtual users),
and the network of the tutorial's connector (docs/connectors.md).

A real server on a loopback port, spoken to by real connections, JSON lines each way:
``{"op": "hello", "nick"}`` -> ``{"op": "welcome"}`` (or ``{"op": "error"}`` if the nick is
taken); ``{"op": "join", "chat"}``; ``{"op": "say", "chat", "text", "ref"}`` -> the server numbers
the message, answers ``{"op": "ok", "ref", "id"}`` and sends ``{"op": "said", "chat", "nick",
"id", "text"}`` to every member of the chat, the sender included (an echo, as IRC servers do
with echo-message). The server keeps every message, so tests can check what the network saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Said:
    chat: str
    nick: str
    id: str
    text: str


@dataclass
class ChatnetServer:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Said] = field(default_factory=list)
    _members: dict[str, set[asyncio.StreamWriter]] = field(default_factory=dict)
    _nicks: dict[asyncio.StreamWriter, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._nicks):
                writer.close()
            await self._server.wait_closed()

    async def wait_for(self, chat: str, predicate: Any, within: float = 30.0) -> Said:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: any(predicate(m) for m in self.messages if m.chat == chat))
        return next(m for m in self.messages if m.chat == chat and predicate(m))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                await self._handle(json.loads(line), writer)
        except (ConnectionError, json.JSONDecodeError):
            pass
        finally:
            self._nicks.pop(writer, None)
            for members in self._members.values():
                members.discard(writer)
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def _handle(self, message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        op = message.get("op")
        if op == "hello":
            nick = str(message["nick"])
            if nick in self._nicks.values():
                _send(writer, {"op": "error", "reason": f"nick {nick} is taken"})
            else:
                self._nicks[writer] = nick
                _send(writer, {"op": "welcome", "nick": nick})
        elif op == "join":
            self._members.setdefault(str(message["chat"]), set()).add(writer)
        elif op == "say" and writer in self._nicks:
            chat = str(message["chat"])
            said = Said(chat, self._nicks[writer], str(next(self._ids)), str(message["text"]))
            _send(writer, {"op": "ok", "ref": message.get("ref"), "id": said.id})
            for member in self._members.get(chat, set()):
                _send(member, {"op": "said", "chat": chat, "nick": said.nick, "id": said.id, "text": said.text})
            async with self._changed:
                self.messages.append(said)
                self._changed.notify_all()


def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")


class ChatnetClient:
    """One connection to chatnet, as a person (tests) or a bridge session (the connector) uses it."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._acks: dict[str, asyncio.Future[str]] = {}
        self._refs = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        _send(self._writer, {"op": "hello", "nick": self.nick})
        answer = json.loads(await self._reader.readline())
        if answer.get("op") != "welcome":
            raise ConnectionError(str(answer.get("reason", answer)))
        self._task = asyncio.create_task(self._read())

    def join(self, chat: str) -> None:
        assert self._writer is not None
        _send(self._writer, {"op": "join", "chat": chat})

    async def say(self, chat: str, text: str) -> str:
        """Say ``text`` in ``chat``; returns the id the server gave the message."""
        assert self._writer is not None
        ref = str(next(self._refs))
        ack = self._acks[ref] = asyncio.get_running_loop().create_future()
        _send(self._writer, {"op": "say", "chat": chat, "text": text, "ref": ref})
        return await asyncio.wait_for(ack, 30)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    async def _read(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            message = json.loads(line)
            if message.get("op") == "ok":
                ack = self._acks.pop(str(message.get("ref")), None)
                if ack is not None and not ack.done():
                    ack.set_result(str(message["id"]))
            elif message.get("op") == "said":
                await self.heard.put(message)

