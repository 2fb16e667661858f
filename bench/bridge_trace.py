"""The bridge's own stamps (``BRIDGEKIT_BENCH_TRACE``, see ``bridgekit/bench_trace.py``), read back
and paired into what the bridge adds to each message of a benchmark run, measured at the bridge.

- Matrix -> IRC: ``matrix_in`` (the transaction holding the event was read; keyed by event ID)
  -> ``irc_out`` (its line written to the IRC socket; keyed by the line's text).
- IRC -> Matrix: ``irc_in`` (the line read from the IRC socket; keyed by its text) ->
  ``matrix_send`` (the room event's send to the homeserver begins; keyed by its body).

Messages are found by the benchmark's tag (``"<tag> <seq> ..."``): the first stamp of each stage
and sequence number counts (a retried send is not a new arrival).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path


def stamps(path: Path, stage: str) -> dict[str, int]:
    """The first ``monotonic_ns`` of each key at ``stage`` (empty when the file is missing)."""
    found: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return found
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written as we read
        if record.get("stage") == stage:
            found.setdefault(str(record["key"]), int(record["ns"]))
    return found


def by_sequence(keyed: dict[str, int], tag: str) -> dict[int, int]:
    """Stamps keyed by message text, as ``{sequence number: ns}`` for the messages of ``tag``."""
    out: dict[int, int] = {}
    for text, ns in keyed.items():
        parts = text.split(" ", 2)
        if len(parts) >= 2 and parts[0] == tag and parts[1].isdigit():
            out.setdefault(int(parts[1]), ns)
    return out


def matrix_to_irc_s(path: Path, tag: str, event_ids: list[str]) -> list[float]:
    """Per message (in order of ``event_ids``, sequence = index), transaction arrival -> line on
    the IRC socket, in seconds; messages without both stamps are left out."""
    arrived = stamps(path, "matrix_in")
    written = by_sequence(stamps(path, "irc_out"), tag)
    return [(written[seq] - arrived[event_id]) / 1e9 for seq, event_id in enumerate(event_ids)
            if event_id in arrived and seq in written]


async def matrix_to_irc(path: Path, tag: str, event_ids: list[str], lines: int, patience_s: float = 2.0) -> list[float]:
    """:func:`matrix_to_irc_s` once the stamps of the ``lines`` lines that arrived are all in the
    file (at most ``patience_s``): the bridge writes a transaction's ``matrix_in`` stamps after
    answering it, so the last line can reach IRC before its arrival stamp is written."""
    deadline = time.monotonic() + patience_s
    while True:
        found = matrix_to_irc_s(path, tag, event_ids)
        if len(found) >= lines or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.05)


def irc_to_matrix_s(path: Path, tag: str) -> list[float]:
    """Per message of ``tag``, line read from the IRC socket -> Matrix send begins, in seconds."""
    heard = by_sequence(stamps(path, "irc_in"), tag)
    sent = by_sequence(stamps(path, "matrix_send"), tag)
    return [(sent[seq] - heard[seq]) / 1e9 for seq in sorted(heard) if seq in sent]
