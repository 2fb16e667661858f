"""Turn a homeserver transaction body into inbox rows: pure, no I/O.

A transaction is ``{"events": [...], "ephemeral": [...], ...}``. Every entry becomes one row, in
order: valid room events as ``pending``, malformed ones as ``rejected`` with the reason (they never
drop their neighbours, spec TXN-k), and the optional sections (ephemeral, to-device, device lists,
one-time-key counts, fallback keys; stable and unstable names) as rows of their own kind.

The *fingerprint* tells a homeserver's retry of a transaction (same txnId, same events) from a new
transaction that reuses an old txnId (a homeserver whose database was reset starts again at 1).
It is computed from the event IDs and the non-PDU sections, not from the raw bytes, because
Synapse re-serialises a retried transaction and ``unsigned.age`` changes between attempts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from bridgekit.events import (
    EphemeralEvent,
    InboxKind,
    InvalidEvent,
    MatrixEvent,
    parse_client_event,
    parse_ephemeral_event,
)


class BadTransaction(ValueError):
    """The body as a whole is unusable; answered with 400 and the given errcode."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message


class InboxRow(NamedTuple):
    """One entry of a transaction, ready to be stored. (A NamedTuple: a hundred are made per
    transaction, and a frozen dataclass costs four times as much to build.)"""

    seq: int
    kind: InboxKind
    payload: str
    event_id: str | None = None
    room_id: str | None = None
    rejected: str | None = None
    """Why the entry was rejected; ``None`` for an entry to handle."""
    parsed: MatrixEvent | EphemeralEvent | dict[str, Any] | None = None

    @property
    def queue_key(self) -> str:
        return queue_key(self.kind, self.room_id)


def queue_key(kind: str, room_id: str | None) -> str:
    """Rows with one key are handled in order: per room, and per kind for room-less rows
    (to-device, device lists, presence)."""
    return room_id if room_id is not None else f"~{kind}"


@dataclass(frozen=True, slots=True)
class ParsedTransaction:
    rows: list[InboxRow]
    fingerprint: str

    @property
    def rejected(self) -> list[InboxRow]:
        return [row for row in self.rows if row.rejected is not None]


# Stable name first: when a homeserver sends both, the stable one wins.
_LIST_SECTIONS: tuple[tuple[InboxKind, tuple[str, ...]], ...] = (
    ("ephemeral", ("ephemeral", "de.sorunome.msc2409.ephemeral")),
    ("to_device", ("to_device", "de.sorunome.msc2409.to_device")),
)
_OBJECT_SECTIONS: tuple[tuple[InboxKind, tuple[str, ...]], ...] = (
    ("device_lists", ("device_lists", "org.matrix.msc3202.device_lists")),
    (
        "otk_counts",
        (
            "device_one_time_keys_count",
            "org.matrix.msc3202.device_one_time_keys_count",
            "org.matrix.msc3202.device_one_time_key_counts",
        ),
    ),
    (
        "fallback_keys",
        ("device_unused_fallback_key_types", "org.matrix.msc3202.device_unused_fallback_key_types"),
    ),
)


def parse_transaction_body(body: bytes) -> ParsedTransaction:
    """Parse and classify a transaction body. Raises :class:`BadTransaction` only when the body is
    not JSON or not an object with an ``events`` list; a bad *entry* is a rejected row instead."""
    document, raw_events = _split_body(body)
    events = document.get("events")
    if not isinstance(events, list) or raw_events is None:
        raise BadTransaction("M_BAD_JSON", "transaction body needs an 'events' list")

    rows: list[InboxRow] = []
    identity: list[Any] = []
    for entry, raw in zip(events, raw_events, strict=True):
        row = _pdu_row(len(rows), entry, raw)
        rows.append(row)
        identity.append(row.event_id if row.event_id is not None else _canonical(entry))
    for kind, keys in _LIST_SECTIONS:
        section = _first_present(document, keys)
        if section is None:
            continue
        if not isinstance(section, list):
            rows.append(_rejected(len(rows), kind, section, f"'{kind}' must be a list"))
        else:
            rows.extend(_ephemeral_row(len(rows) + offset, kind, e) for offset, e in enumerate(section))
        identity.append([kind, _canonical(section)])
    for kind, keys in _OBJECT_SECTIONS:
        section = _first_present(document, keys)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            rows.append(_rejected(len(rows), kind, section, f"'{kind}' must be an object"))
        else:
            rows.append(InboxRow(len(rows), kind, _dump(section), parsed=dict(section)))
        identity.append([kind, _canonical(section)])
    fingerprint = hashlib.sha256(_canonical(identity).encode()).hexdigest()
    return ParsedTransaction(rows=rows, fingerprint=fingerprint)


# The decoder's C scanner parses one JSON value at an index and says where it ended.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BLANKS = " \t\n\r"


def _skip_whitespace(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _split_body(body: bytes) -> tuple[dict[str, Any], list[str] | None]:
    """The body's top-level object, and the exact text of each entry of its ``events`` list.

    Storing each event as the homeserver wrote it keeps it byte for byte, and saves encoding
    every event again (which cost more than all the rest of the parsing).
    """
    try:
        text = body.decode("utf-8")
        return _split_object(text)
    except _NotAnObject:
        pass
    except (ValueError, StopIteration, IndexError) as error:
        raise BadTransaction("M_NOT_JSON", f"transaction body is not valid JSON: {error!r}") from None
    try:
        json.loads(body)
    except ValueError as error:
        raise BadTransaction("M_NOT_JSON", f"transaction body is not valid JSON: {error}") from None
    raise BadTransaction("M_BAD_JSON", "transaction body must be a JSON object")


class _NotAnObject(Exception):
    pass


def _split_object(text: str) -> tuple[dict[str, Any], list[str] | None]:
    index = _skip_whitespace(text, 0)
    if text[index] != "{":
        raise _NotAnObject
    document: dict[str, Any] = {}
    raw_events: list[str] | None = None
    index = _skip_whitespace(text, index + 1)
    if text[index] == "}":
        return document, raw_events
    while True:
        if text[index] != '"':
            raise ValueError(f"expected a key at {index}")
        key, index = _scan_value(text, index)
        index = _skip_whitespace(text, index)
        if text[index] != ":":
            raise ValueError(f"expected ':' at {index}")
        index = _skip_whitespace(text, index + 1)
        if key == "events" and text[index] == "[":
            document[key], raw_events, index = _split_list(text, index)
        else:
            document[key], index = _scan_value(text, index)
        index = _skip_whitespace(text, index)
        if text[index] == "}":
            break
        if text[index] != ",":
            raise ValueError(f"expected ',' or '}}' at {index}")
        index = _skip_whitespace(text, index + 1)
    if _skip_whitespace(text, index + 1) != len(text):
        raise ValueError("extra data after the object")
    return document, raw_events


def _split_list(text: str, index: int) -> tuple[list[Any], list[str], int]:
    values: list[Any] = []
    raws: list[str] = []
    index = _skip_whitespace(text, index + 1)
    if text[index] == "]":
        return values, raws, index + 1
    while True:
        start = index
        value, index = _scan_value(text, index)
        values.append(value)
        raws.append(text[start:index])
        # Homeservers send compact JSON: look at the next character before paying for a
        # whitespace search.
        if text[index] in _BLANKS:
            index = _skip_whitespace(text, index)
        if text[index] == "]":
            return values, raws, index + 1
        if text[index] != ",":
            raise ValueError(f"expected ',' or ']' at {index}")
        index += 1
        if text[index] in _BLANKS:
            index = _skip_whitespace(text, index)


def _pdu_row(seq: int, entry: object, raw: str) -> InboxRow:
    try:
        event = parse_client_event(entry)
    except InvalidEvent as error:
        return InboxRow(seq, "pdu", raw, rejected=str(error))
    return InboxRow(seq, "pdu", raw, event_id=event.event_id, room_id=event.room_id, parsed=event)


def _ephemeral_row(seq: int, kind: InboxKind, entry: object) -> InboxRow:
    try:
        event = parse_ephemeral_event(entry)
    except InvalidEvent as error:
        return _rejected(seq, kind, entry, str(error))
    return InboxRow(seq, kind, _dump(entry), room_id=event.room_id, parsed=event)


def _rejected(seq: int, kind: InboxKind, entry: object, reason: str) -> InboxRow:
    # A rejected row keeps no event_id: the unique key is for events we will handle, and a
    # malformed copy must not shadow a well-formed one that arrives later.
    return InboxRow(seq, kind, _dump(entry), rejected=reason)


def _first_present(document: Mapping[str, Any], keys: tuple[str, ...]) -> object | None:
    for key in keys:
        if key in document:
            value: object = document[key]
            return value
    return None


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _canonical(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


__all__ = ["BadTransaction", "InboxRow", "ParsedTransaction", "parse_transaction_body", "queue_key"]
