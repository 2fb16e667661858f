"""Classifying a transaction body into inbox rows (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridgekit.core.transactions import (
    MAX_DEPTH,
    BadTransaction,
    depth,
    has_lone_surrogate,
    parse_transaction_body,
    skip_value,
)


def event(event_id: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": event_id, "room_id": "!r:hs", "sender": "@a:hs", "type": "m.room.message",
        "origin_server_ts": 5, "content": {"body": "hi"},
    }
    base.update(extra)
    return base


def parse(document: object) -> Any:
    return parse_transaction_body(json.dumps(document).encode())


def test_each_entry_becomes_a_row_in_order() -> None:
    parsed = parse({"events": [event("$1"), event("$2")]})
    assert [(row.seq, row.event_id, row.rejected) for row in parsed.rows] == [(0, "$1", None), (1, "$2", None)]


def test_a_retry_with_other_ages_has_the_same_fingerprint() -> None:
    first = parse({"events": [event("$1", unsigned={"age": 1})]})
    retry = parse({"events": [event("$1", unsigned={"age": 9000})]})
    assert first.fingerprint == retry.fingerprint


def test_other_events_under_the_same_txn_id_have_another_fingerprint() -> None:
    assert parse({"events": [event("$1")]}).fingerprint != parse({"events": [event("$2")]}).fingerprint


def test_ephemeral_sections_count_in_the_fingerprint() -> None:
    typing = {"type": "m.typing", "room_id": "!r:hs", "content": {"user_ids": []}}
    assert parse({"events": []}).fingerprint != parse({"events": [], "ephemeral": [typing]}).fingerprint


def test_malformed_entries_are_rejected_rows_with_reasons() -> None:
    parsed = parse({"events": [event("$ok"), 42, event("$bad", content=[]), {"event_id": "$x"}]})
    reasons = [row.rejected for row in parsed.rows]
    assert reasons[0] is None
    assert reasons[1] == "event is a int, not an object"
    assert "'content'" in str(reasons[2])
    assert "missing" in str(reasons[3])
    # A rejected row keeps its payload for inspection but claims no event_id.
    assert [row.event_id for row in parsed.rows] == ["$ok", None, None, None]
    assert json.loads(parsed.rows[1].payload) == 42


def test_unstable_section_names_are_read_and_stable_ones_win() -> None:
    stable = {"type": "m.typing", "room_id": "!stable:hs", "content": {}}
    unstable = {"type": "m.typing", "room_id": "!unstable:hs", "content": {}}
    parsed = parse({"events": [], "ephemeral": [stable], "de.sorunome.msc2409.ephemeral": [unstable]})
    assert [(row.kind, row.room_id) for row in parsed.rows] == [("ephemeral", "!stable:hs")]
    only_unstable = parse({"events": [], "org.matrix.msc3202.device_one_time_key_counts": {"@a:hs": {}}})
    assert [row.kind for row in only_unstable.rows] == ["otk_counts"]


@pytest.mark.parametrize(
    ("raw", "errcode"),
    [(b"nope", "M_NOT_JSON"), (b"\xff\xfe", "M_NOT_JSON"), (b"[]", "M_BAD_JSON"), (b'{"events": {}}', "M_BAD_JSON")],
)
def test_unusable_bodies_raise_with_errcode(raw: bytes, errcode: str) -> None:
    with pytest.raises(BadTransaction) as caught:
        parse_transaction_body(raw)
    assert caught.value.errcode == errcode


def test_each_event_is_stored_exactly_as_the_homeserver_wrote_it() -> None:
    first = '{ "event_id" : "$1", "room_id":"!r:hs","sender":"@a:hs","type":"m.room.message",' \
        '"origin_server_ts":5,"content":{"body":"caf\\u00e9 \\"quoted\\" ]},["}}'
    second = json.dumps(event("$2", content={"body": "ünïcode ✓"}), ensure_ascii=False)
    body = f'{{\n  "events" : [ {first} ,\n {second}\t],\n  "ephemeral": []\n}}\n'.encode()
    parsed = parse_transaction_body(body)
    assert [row.payload for row in parsed.rows] == [first, second]
    assert [row.event_id for row in parsed.rows] == ["$1", "$2"]


def test_events_inside_other_keys_are_not_mistaken_for_the_list() -> None:
    body = json.dumps({"x": {"events": ["not", "these"]}, "events": [event("$real")]}).encode()
    assert [row.event_id for row in parse_transaction_body(body).rows] == ["$real"]


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b'{"events": []} trailing', b'{"events": [1,]}', b'{"events": [}', b'{"events" []}']
)
def test_broken_json_is_not_json(raw: bytes) -> None:
    with pytest.raises(BadTransaction) as caught:
        parse_transaction_body(raw)
    assert caught.value.errcode == "M_NOT_JSON"


def test_an_empty_events_list_is_a_valid_transaction() -> None:
    assert parse_transaction_body(b'{"events":[]}').rows == []
    assert parse_transaction_body(b'{ "events" : [ ] }').rows == []


# --- entries that are valid JSON but cannot be stored or handled (issue 10, item 7) -------------


@pytest.mark.parametrize(
    ("text", "lone"),
    [
        (r'"a\ud800b"', True),
        (r'"\uDC00"', True),
        (r'"\ud83d\ude00"', False),  # a pair: one character
        (r'"\ude00\ud83d"', True),  # the wrong order is two lone halves
        (r'"\\ud800"', False),  # an escaped backslash, then text
        (r'"\\\ud800"', True),  # an escaped backslash, then a lone surrogate
        (r'"\u00e9 \n"', False),
        ('"plain"', False),
    ],
)
def test_lone_surrogate_escapes_are_told_from_pairs_and_escaped_backslashes(text: str, lone: bool) -> None:
    assert has_lone_surrogate(text) is lone
    decoded = json.loads(text)
    assert lone is any(0xD800 <= ord(char) <= 0xDFFF for char in decoded)  # what the decoder makes of it


@pytest.mark.parametrize(
    "text", ['[[1,{"a":[]}],"]"]', '{"a":{"b":[1,2,{"c":null}]},"d":"}"}', '"s"', "12", "[]", "{ }", ' [ 1 , 2 ] ']
)
def test_skip_value_finds_the_end_the_decoder_finds(text: str) -> None:
    start = len(text) - len(text.lstrip())
    _value, end = json.JSONDecoder().raw_decode(text, start)
    assert skip_value(text + ",next", start) == end


@pytest.mark.parametrize("text", ["[1,]", '{"a" 1}', "[1 2]", '{"a":1,}', "{1:2}", "[", '{"a":[}'])
def test_skip_value_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises((ValueError, IndexError)):
        skip_value(text, 0)


def test_skip_value_needs_no_recursion() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert skip_value(text, 0) == len(text)


def test_depth_counts_arrays_and_objects() -> None:
    assert [depth(1), depth([]), depth({"a": [1, {"b": []}]})] == [0, 1, 4]


def test_too_deep_entries_are_rejected_and_their_neighbours_kept() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    ok = "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3)
    body = f'{{"events":[{json.dumps(event("$1"))},{deep},{json.dumps(event("$2", content={"x": json.loads(ok)}))}]}}'
    parsed = parse_transaction_body(body.encode())
    assert [(row.event_id, row.rejected) for row in parsed.rows] == [
        ("$1", None), (None, f"nested deeper than {MAX_DEPTH} levels"), ("$2", None),
    ]
    assert parsed.rows[1].payload == deep  # kept as sent


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    parsed = parse({"events": [event("$1", content={"body": "[" * 5000})]})
    assert parsed.rows[0].rejected is None


def test_a_lone_surrogate_in_an_event_rejects_it_and_the_fingerprint_still_works() -> None:
    body = ('{"events":[' + json.dumps(event("$1")).replace('"hi"', r'"\ud800"') + "]}").encode()
    first, again = parse_transaction_body(body), parse_transaction_body(body)
    assert first.rows[0].rejected == "contains a lone UTF-16 surrogate escape (not a character)"
    first.rows[0].payload.encode("utf-8")  # storable as sent
    assert first.fingerprint == again.fingerprint


def test_a_body_nested_past_the_decoder_is_bad_json() -> None:
    with pytest.raises(BadTransaction) as raised:
        parse_transaction_body(b"[" * 5000 + b"]" * 5000)
    assert raised.value.errcode == "M_BAD_JSON"
