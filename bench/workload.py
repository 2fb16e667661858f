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
from dataclasses import dataclass, field
from typing import Any

EVENTS_PER_TXN = 100
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


@dataclass(slots=True)
class Workload:
    """All transactions of one run, grouped by the phase that sends them."""

    startup: Txn
    warmup: list[Txn]
    rounds: list[Round]
    event_sizes: list[int] = field(default_factory=list)


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

    def txn(self, txn_id: str) -> Txn:
        events = [self.event() for _ in range(EVENTS_PER_TXN)]
        # Compact JSON, UTF-8, as Synapse's encoder produces it.
        body = json.dumps({"events": events}, separators=(",", ":"), ensure_ascii=False).encode()
        return Txn(txn_id, body, len(events))


def build(txns_per_mode: int, concurrent_senders: int, rounds: int = 1,
          seed: int = 20240601) -> Workload:
    """Generate the run's transactions; concurrent senders share ``txns_per_mode`` between them.

    Both modes move the same number of events, so their events/s are comparable. Transaction IDs
    are per round, phase and sender (``r0-seq-17``, ``r0-c2-5``), like the per-appservice integer
    counter Synapse keeps, and unique within one database.
    """
    factory = _EventFactory(seed)
    startup = factory.txn("start-0")
    warmup = [factory.txn(f"warm-{i}") for i in range(5)]
    per_sender = -(-txns_per_mode // concurrent_senders)
    all_rounds = [
        Round(
            sequential=[factory.txn(f"r{r}-seq-{i}") for i in range(txns_per_mode)],
            concurrent=[[factory.txn(f"r{r}-c{sender}-{i}") for i in range(per_sender)]
                        for sender in range(concurrent_senders)],
        )
        for r in range(rounds)
    ]
    return Workload(startup, warmup, all_rounds, factory.sizes)
