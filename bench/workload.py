"""The benchmark's input: homeserver transactions of realistic ``m.room.message`` events.

Every contender receives byte-for-byte the same transactions, generated once from a fixed seed and
serialised before any clock starts, so the measurement never includes the load generator's JSON
work. Event IDs are unique across the whole run (a bridge that deduplicates by event ID must store
every one of them); events are spread over a few rooms and senders, 300-600 bytes each as
serialised, some with ``unsigned.age`` (Synapse adds it) and a mix of plain, HTML, reply and emote
messages, because a bridge's cost per event depends on what the events look like.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

ROOMS = 20
SERVER_NAME = "bench.example.org"

_WORDS = (
    "the", "a", "bridge", "message", "room", "portal", "ghost", "matrix", "irc", "channel",
    "network", "remote", "sender", "event", "transaction", "store", "durable", "commit", "quick",
    "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "meeting", "tomorrow",
    "release", "deploy", "server", "client", "latency", "throughput", "queue", "worker",
    "backlog", "retry", "café", "naïve", "résumé", "😀", "👍", "✔", "über", "straße", "déjà", "vu",
)


@dataclass(frozen=True, slots=True)
class Txn:
    """One transaction as the homeserver would PUT it."""

    txn_id: str
    body: bytes
    events: int


@dataclass(frozen=True, slots=True)
class Round:
    """One measurement of both modes; every round has fresh txnIds and event IDs."""

    sequential: list[Txn]
    concurrent: list[list[Txn]]  # one sequence per sender


class _EventFactory:
    """Deterministic event generator: the same seed yields the same bytes on every run."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._seed = seed
        self._counter = 0
        self._ts = 1_700_000_000_000
        self.rooms = [f"!{self._token(18)}:{SERVER_NAME}" for _ in range(ROOMS)]
        # Each room has its own small crowd, as real rooms do.
        self.members = {
            room: [f"@{self._rng.choice(['alice', 'bob', 'carol', 'dave', 'erin', 'frank'])}"
                   f"{self._rng.randrange(10_000)}:{SERVER_NAME}" for _ in range(12)]
            for room in self.rooms
        }
        self.recent: list[str] = []
        self.sizes: list[int] = []
        # Message text is sliced from one pool of random words: drawing words one by one for each
        # of 100,000 events made generation the slowest part of a run.
        self._pool = " ".join(self._rng.choice(_WORDS) for _ in range(100_000)).encode()

    def _token(self, n: int) -> str:
        return "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                       for _ in range(n))

    def _event_id(self) -> str:
        # Room v4+ event IDs: '$' + unpadded URL-safe base64 of a SHA-256 (43 characters).
        self._counter += 1
        digest = hashlib.sha256(f"{self._seed}:{self._counter}".encode()).digest()
        return "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _text(self, length: int) -> str:
        """About ``length`` bytes of chat text: a slice of the word pool, starting at a word."""
        pool = self._pool
        start = pool.find(b" ", self._rng.randrange(len(pool) - length - 64)) + 1
        # Dropping a code point cut at the end keeps the text valid UTF-8 (a few bytes short).
        return pool[start:start + length].decode("utf-8", errors="ignore").rstrip()

    def event(self) -> dict[str, Any]:
        rng = self._rng
        room = rng.choice(self.rooms)
        self._ts += rng.randrange(1, 2_000)
        event: dict[str, Any] = {
            "type": "m.room.message",
            "room_id": room,
            "sender": rng.choice(self.members[room]),
            "event_id": self._event_id(),
            "origin_server_ts": self._ts,
            "content": {},
        }
        if rng.random() < 0.5:
            event["unsigned"] = {"age": rng.randrange(5, 5_000)}
        kind = rng.random()
        content: dict[str, Any] = {"msgtype": "m.text", "body": ""}
        if kind < 0.15:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = ""
        elif kind < 0.25 and self.recent:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": rng.choice(self.recent)}}
        elif kind < 0.30:
            content["msgtype"] = rng.choice(["m.emote", "m.notice"])
        if rng.random() < 0.1:
            content["m.mentions"] = {"user_ids": [rng.choice(self.members[room])]}
        event["content"] = content
        target = rng.randrange(300, 601)
        base = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        room_for_text = max(8, target - base)
        if "formatted_body" in content:
            # Body and HTML share the budget; the HTML spends some of it on tags.
            text = self._text(max(4, (room_for_text - 7) // 2))
            content["body"] = text
            content["formatted_body"] = f"<b>{text[: len(text) // 2]}</b>{text[len(text) // 2:]}"
            added = len(text.encode()) + len(content["formatted_body"].encode())
        else:
            content["body"] = self._text(room_for_text)
            added = len(content["body"].encode())
        # The pool's words need no JSON escaping, so the text adds exactly its UTF-8 bytes.
        self.sizes.append(base + added)
        self.recent = [*self.recent[-49:], event["event_id"]]
        return event


class TxnSource:
    """Makes transactions of any size fast enough to fill rounds of several seconds.

    Events are drawn in turn from a pool of serialised templates made by :class:`_EventFactory`
    (so their mix and sizes are the factory's), each spliced with a fresh, run-unique event ID:
    serialising every event with ``json.dumps`` made a 5-second round of 100-event transactions
    take longer to generate than to measure.
    """

    def __init__(self, seed: int = 20240601, templates: int = 4_000) -> None:
        factory = _EventFactory(seed)
        self._seed = seed
        self._pieces: list[tuple[bytes, bytes]] = []
        for _ in range(templates):
            event = factory.event()
            raw = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            event_id = event["event_id"].encode()
            at = raw.index(event_id)
            self._pieces.append((raw[:at], raw[at + len(event_id):]))
        self.event_sizes = factory.sizes
        self._counter = 0

    def _event_id(self) -> bytes:
        # Same shape as the factory's IDs; the "x" keeps them apart from the templates' own.
        self._counter += 1
        digest = hashlib.sha256(f"{self._seed}:x{self._counter}".encode()).digest()
        return b"$" + base64.urlsafe_b64encode(digest).rstrip(b"=")

    def txn(self, txn_id: str, events: int) -> Txn:
        pieces, n = self._pieces, len(self._pieces)
        parts = []
        for _ in range(events):
            prefix, suffix = pieces[self._counter % n]
            parts.append(prefix + self._event_id() + suffix)
        # Compact JSON, UTF-8, as Synapse's encoder produces it.
        return Txn(txn_id, b'{"events":[' + b",".join(parts) + b"]}", events)

    def sequence(self, prefix: str, count: int, events: int) -> list[Txn]:
        return [self.txn(f"{prefix}-{i}", events) for i in range(count)]

    def round(self, tag: str, count: int, events: int, senders: int) -> Round:
        """One round's transactions: ``count`` for the one sender, as many again shared out over
        ``senders`` concurrent senders. Transaction IDs are per round, phase and sender
        (``s10-r0-seq-17``, ``s10-r0-c2-5``), like the per-appservice counter Synapse keeps."""
        per_sender = -(-count // senders)
        return Round(
            sequential=self.sequence(f"{tag}-seq", count, events),
            concurrent=[self.sequence(f"{tag}-c{sender}", per_sender, events)
                        for sender in range(senders)],
        )
