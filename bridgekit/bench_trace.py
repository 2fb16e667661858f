"""A benchmark hook: the bridge's own clock at the stages of a message's way through it.

With ``BRIDGEKIT_BENCH_TRACE=<path>`` in its environment, the bridge appends one JSON line per
stage to ``path``: ``{"key": ..., "stage": ..., "ns": ...}``, where ``ns`` is
``time.monotonic_ns()`` (CLOCK_MONOTONIC, the same clock every process on the machine reads, so a
benchmark can set the bridge's stamps beside its own). ``bench/irc.py`` uses it to report what the
bridge adds to a message, measured at the bridge: from a transaction's arrival to the line on the
IRC socket, and from an IRC line's arrival to the Matrix send. End-to-end figures also hold the
homeserver's and the network's share, and "after the homeserver handed it to another appservice"
is not "after it reached this bridge" (Synapse pushes to each appservice separately).

Stages and their keys (the key is what the benchmark can match the stage by):

- ``matrix_in``: a transaction's body was read (key: each of its events' IDs);
- ``irc_out``: a line was written to an IRC socket (key: its text after ``:``, else the line);
- ``irc_in``: a message line was read from an IRC socket (key: its text);
- ``matrix_send``: a room event is about to be sent to the homeserver (key: its ``body``).

Unset (every deployment), :data:`enabled` is False and :func:`record` returns at once; callers
that would build a key at some cost check :data:`enabled` first. The file is written line by line
(each line one ``write``), unbuffered beyond the line, so a bridge that is killed loses nothing
it stamped; it is not meant for production traffic.
"""

from __future__ import annotations

import json
import os
import time
from typing import TextIO

TRACE_VARIABLE = "BRIDGEKIT_BENCH_TRACE"

_path = os.environ.get(TRACE_VARIABLE)
_sink: TextIO | None = open(_path, "a", buffering=1, encoding="utf-8") if _path else None  # noqa: SIM115 (open for the process's life)

enabled = _sink is not None
"""Whether stages are recorded (``BRIDGEKIT_BENCH_TRACE`` was set when the bridge started)."""


def record(stage: str, key: str, ns: int | None = None) -> None:
    """Append one stamp (now, unless ``ns`` is given); nothing when tracing is off."""
    if _sink is None:
        return
    stamp = time.monotonic_ns() if ns is None else ns
    _sink.write(json.dumps({"key": key, "stage": stage, "ns": stamp}, ensure_ascii=False) + "\n")


def record_transaction(body: bytes, ns: int) -> None:
    """``matrix_in`` for each event of a transaction body that arrived at ``ns``."""
    if _sink is None:
        return
    try:
        events = json.loads(body).get("events", [])
    except (ValueError, AttributeError):
        return
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            record("matrix_in", event["event_id"], ns)


__all__ = ["TRACE_VARIABLE", "enabled", "record", "record_transaction"]
