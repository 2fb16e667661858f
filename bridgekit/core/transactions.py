"""Turn a homeserver transaction body into inbox rows: pure, no I/O.

A transaction is ``{"events": [...], "ephemeral": [...], ...}``. Every entry becomes one row, in
order: valid room events as ``pending``, malformed ones as ``rejected`` with the reason (they never
drop their neighbours, spec TXN-k), and the optional sections (ephemeral, to-device, device lists,
one-time-key counts, fallback keys; stable and unstable names) as rows of their own kind.

The *fingerprint* tells a homeserver's retry of a transaction (same txnId, same events) from a new
transaction that reuses an old txnId (a homeserver whose database was reset starts again at 1).
It is computed from the event IDs and the non-PDU sections, not from the raw bytes, because
Synapse re-serialises a retried transaction and ``unsigned.age`` changes between attempts.

Some entries are valid JSON and still cannot be handled or stored, and must not wedge the
homeserver's queue with a 500 (issue 10): nesting deeper than :data:`MAX_DEPTH` (past the decoder's
recursion limit, or close enough to it that re-encoding in a deeper stack would fail), a lone
UTF-16 surrogate escape (``"\\ud800"``: no UTF-8 text can hold it, so neither database takes it),
and a NUL in an identifier the store keeps in a column (PostgreSQL text refuses it). Each becomes a
rejected row like any other malformed entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from bridgekit.core.json_entries import MAX_DEPTH, NotAnObject, SplitBody, TooDeep, depth, skip_value, split_object
from bridgekit.events import (
    EphemeralEvent,
    InboxKind,
    InvalidEvent,
    MatrixEvent,
    parse_client_event,
    parse_ephemeral_event,
)

log = logging.getLogger(__name__)

TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


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
    split = _split_body(body)
    events = split.document.get("events")
    raw_events = split.entries.get("events")
    if not isinstance(events, list) or raw_events is None:
        raise BadTransaction("M_BAD_JSON", "transaction body needs an 'events' list")

    rows: list[InboxRow] = []
    identity: list[Any] = []
    for entry, raw in zip(events, raw_events, strict=True):
        try:
            row = _pdu_row(len(rows), "pdu", entry, raw)
        except Exception as error:  # see _guarded; inline here, as this loop runs per event
            row = _unreadable(len(rows), "pdu", raw, error)
        rows.append(row)
        identity.append(row.event_id if row.event_id is not None else _canonical(entry))
    for kind, keys in _LIST_SECTIONS:
        key = _first_present(split.document, keys)
        if key is None:
            continue
        section = split.document[key]
        if not isinstance(section, list):
            rows.append(_rejected(len(rows), kind, split.raw(key), f"'{kind}' must be a list"))
        else:
            raws = split.entries[key]
            rows.extend(
                _guarded(_ephemeral_row, len(rows) + offset, kind, entry, raw)
                for offset, (entry, raw) in enumerate(zip(section, raws, strict=True))
            )
        identity.append([kind, _canonical(section)])
    for kind, keys in _OBJECT_SECTIONS:
        key = _first_present(split.document, keys)
        if key is None:
            continue
        rows.append(_guarded(_object_row, len(rows), kind, split.document[key], split.raw(key)))
        identity.append([kind, _canonical(split.document[key])])
    # surrogatepass: a lone surrogate (in a rejected entry) must not make the hash itself fail.
    fingerprint = hashlib.sha256(_canonical(identity).encode("utf-8", "surrogatepass")).hexdigest()
    return ParsedTransaction(rows=rows, fingerprint=fingerprint)


# The lists split entry by entry: the events and the ephemeral and to-device sections.
_LISTS_TO_SPLIT = frozenset({"events"} | {key for _kind, keys in _LIST_SECTIONS for key in keys})


def _split_body(body: bytes) -> SplitBody:
    """The body's top-level object, and the exact text of each entry of its lists.

    Storing each event as the homeserver wrote it keeps it byte for byte, and saves encoding
    every event again (which cost more than all the rest of the parsing).
    """
    try:
        text = body.decode("utf-8")
        return split_object(text, _LISTS_TO_SPLIT)
    except NotAnObject:
        pass
    except (ValueError, StopIteration, IndexError) as error:
        raise BadTransaction("M_NOT_JSON", f"transaction body is not valid JSON: {error!r}") from None
    try:
        json.loads(body)
    except RecursionError:
        pass  # nested past the decoder's limit: whatever it is, it is no transaction object
    except ValueError as error:
        raise BadTransaction("M_NOT_JSON", f"transaction body is not valid JSON: {error}") from None
    raise BadTransaction("M_BAD_JSON", "transaction body must be a JSON object")



# An escape sequence, read from the left so that an escaped backslash is never taken for the start
# of a \u escape: a surrogate pair (one character) or a lone surrogate (group 1).
_SURROGATE_ESCAPE = re.compile(
    r"\\(?:\\|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(u[dD][89a-fA-F][0-9a-fA-F]{2}))"
)


def has_lone_surrogate(raw: str) -> bool:
    """Whether JSON text escapes a UTF-16 surrogate that is not half of a pair (it decodes to a
    code point that no UTF-8 text, and so no database column, can hold)."""
    return "\\u" in raw and any(match.group(1) for match in _SURROGATE_ESCAPE.finditer(raw))


def _unstorable(raw: str, value: object, *identifiers: str | None) -> str | None:
    """Why an otherwise valid entry cannot be stored or handled; None when it can."""
    if isinstance(value, TooDeep):
        return TOO_DEEP
    if has_lone_surrogate(raw):
        return "contains a lone UTF-16 surrogate escape (not a character)"
    for identifier in identifiers:
        if identifier is not None and "\x00" in identifier:
            return f"identifier {identifier!r} contains a NUL character"
    return None


def _pdu_row(seq: int, kind: InboxKind, entry: object, raw: str) -> InboxRow:
    if isinstance(entry, TooDeep):
        return _rejected(seq, kind, raw, TOO_DEEP)
    try:
        event = parse_client_event(entry)
    except InvalidEvent as error:
        return _rejected(seq, kind, raw, str(error))
    # The common case costs three substring searches; only a suspect event is looked at closely.
    if "\\u" in raw or "\x00" in event.event_id or "\x00" in event.room_id:
        problem = _unstorable(raw, entry, event.event_id, event.room_id)
        if problem is not None:
            return _rejected(seq, kind, raw, problem)
    return InboxRow(seq, kind, raw, event_id=event.event_id, room_id=event.room_id, parsed=event)


def _ephemeral_row(seq: int, kind: InboxKind, entry: object, raw: str) -> InboxRow:
    if isinstance(entry, TooDeep):
        return _rejected(seq, kind, raw, TOO_DEEP)
    try:
        event = parse_ephemeral_event(entry)
    except InvalidEvent as error:
        return _rejected(seq, kind, raw, str(error))
    problem = _unstorable(raw, entry, event.room_id)
    if problem is not None:
        return _rejected(seq, kind, raw, problem)
    return InboxRow(seq, kind, raw, room_id=event.room_id, parsed=event)


def _object_row(seq: int, kind: InboxKind, section: object, raw: str) -> InboxRow:
    problem = _unstorable(raw, section)
    if problem is None and isinstance(section, Mapping):
        return InboxRow(seq, kind, raw, parsed=dict(section))
    return _rejected(seq, kind, raw, problem or f"'{kind}' must be an object")


def _guarded(
    make_row: Callable[[int, InboxKind, Any, str], InboxRow], seq: int, kind: InboxKind, entry: object, raw: str
) -> InboxRow:
    """One entry's row; an entry that makes the classification itself fail (a bug, or input no
    one foresaw) is rejected alone, with the error, instead of failing the whole transaction."""
    try:
        return make_row(seq, kind, entry, raw)
    except Exception as error:
        return _unreadable(seq, kind, raw, error)


def _unreadable(seq: int, kind: InboxKind, raw: str, error: Exception) -> InboxRow:
    log.error("could not classify entry %d (%s) of a transaction; stored as rejected", seq, kind, exc_info=error)
    return _rejected(seq, kind, raw, f"could not be read: {error!r}"[:500])


def _rejected(seq: int, kind: InboxKind, raw: str, reason: str) -> InboxRow:
    # A rejected row keeps no event_id: the unique key is for events we will handle, and a
    # malformed copy must not shadow a well-formed one that arrives later. Its payload is the text
    # as sent (escapes kept as escapes), which every database can store.
    return InboxRow(seq, kind, raw, rejected=reason)


def _first_present(document: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in document:
            return key
    return None


def _canonical(value: object) -> str:
    # A value too deep to decode counts by its text.
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
        default=lambda deep: deep.raw if isinstance(deep, TooDeep) else repr(deep),
    )


__all__ = [
    "MAX_DEPTH", "BadTransaction", "InboxRow", "ParsedTransaction", "depth", "has_lone_surrogate",
    "parse_transaction_body", "queue_key", "skip_value",
]
