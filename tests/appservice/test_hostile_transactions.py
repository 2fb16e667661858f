"""Transactions a homeserver may legally send that once answered 500 (issue 10, item 7).

A 500 makes the homeserver retry the same transaction forever, and nothing after it is delivered.
Every entry here must become a rejected row like any other malformed entry: its neighbours are
handled and the answer is 200. Run on SQLite and on PostgreSQL (whose text columns refuse NUL and
whose driver refuses lone surrogates).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from bridgekit.store import Database
from tests.appservice.harness import RunningAppservice, auth, message, running_appservice

pytestmark = pytest.mark.integration

V1 = "/_matrix/app/v1"
TOO_DEEP = 5000
"""Far past the JSON decoder's recursion limit (1000 frames)."""


@pytest.fixture
async def appservice(database: Database) -> Any:
    async with running_appservice(database) as running:
        yield running


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def event_text(event_id: str, *, content: str) -> str:
    """A message event written by hand, so that ``content`` can hold what ``json.dumps`` cannot
    produce (a lone surrogate escape, nesting deeper than the encoder allows)."""
    envelope = json.dumps(message(event_id))
    return envelope.replace('"content": {"msgtype": "m.text", "body": "hi"}', f'"content": {content}')


async def put_raw(appservice: RunningAppservice, txn_id: str, body: str) -> int:
    response = await appservice.http.put(f"{V1}/transactions/{txn_id}", content=body.encode(), headers=auth())
    return response.status_code


async def assert_neighbours_handled(appservice: RunningAppservice, rejected: int) -> None:
    events = await appservice.connector.wait_for(2)
    await appservice.inbox.dispatcher.wait_idle(10)
    assert [e.event_id for e in events] == ["$before", "$after"]
    assert appservice.state.health.rejected_entries == rejected
    assert (await appservice.inbox._store.counts()).rejected == rejected  # kept, not lost


def around(*middle: str, **sections: str) -> str:
    """A transaction whose events are ``$before``, ``middle`` and ``$after``, plus ``sections``
    (raw JSON text each) as top-level keys."""
    events = [json.dumps(message("$before")), *middle, json.dumps(message("$after"))]
    extra = "".join(f',"{key}":{value}' for key, value in sections.items())
    return f'{{"events":[{",".join(events)}]{extra}}}'


async def test_an_event_nested_past_the_recursion_limit_is_rejected_alone(appservice: RunningAppservice) -> None:
    body = around(event_text("$deep", content=f'{{"x":{nested(TOO_DEEP)}}}'))
    assert await put_raw(appservice, "deep", body) == 200
    await assert_neighbours_handled(appservice, rejected=1)


async def test_an_event_nested_just_below_the_recursion_limit_is_rejected_alone(
    appservice: RunningAppservice,
) -> None:
    # Parsed at the route's stack depth, it would blow up later, in a deeper stack (handlers,
    # re-encoding): the parser's own depth limit refuses it up front.
    body = around(event_text("$deep", content=f'{{"x":{nested(900)}}}'))
    assert await put_raw(appservice, "deep900", body) == 200
    await assert_neighbours_handled(appservice, rejected=1)


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\udc00\\ud800"])
async def test_an_event_with_a_lone_surrogate_is_rejected_alone(appservice: RunningAppservice, escape: str) -> None:
    body = around(event_text("$lone", content=f'{{"msgtype":"m.text","body":"a{escape}b"}}'))
    assert await put_raw(appservice, "lone", body) == 200
    await assert_neighbours_handled(appservice, rejected=1)


async def test_a_lone_surrogate_in_a_key_is_rejected_alone(appservice: RunningAppservice) -> None:
    body = around(event_text("$lonekey", content='{"msgtype":"m.text","body":"b","\\ud834":1}'))
    assert await put_raw(appservice, "lonekey", body) == 200
    await assert_neighbours_handled(appservice, rejected=1)


async def test_an_escaped_surrogate_pair_is_a_character_not_a_rejection(appservice: RunningAppservice) -> None:
    body = '{"events":[' + event_text("$emoji", content='{"msgtype":"m.text","body":"\\ud83d\\ude00 \\\\ud800"}') + "]}"
    assert await put_raw(appservice, "emoji", body) == 200
    (event,) = await appservice.connector.wait_for(1)
    assert event.content["body"] == "\U0001f600 \\ud800"
    assert appservice.state.health.rejected_entries == 0


@pytest.mark.parametrize("field", ["event_id", "room_id"])
async def test_a_nul_in_a_stored_identifier_is_rejected_alone(appservice: RunningAppservice, field: str) -> None:
    event = message("$nul")
    event[field] = event[field][:2] + "\x00" + event[field][2:]
    poisoned = json.dumps(event)
    assert "\\u0000" in poisoned
    assert await put_raw(appservice, f"nul-{field}", around(poisoned)) == 200
    await assert_neighbours_handled(appservice, rejected=1)


@pytest.mark.parametrize(
    "entry",
    [
        '{"type":"m.typing","room_id":"!room:localhost","content":{"user_ids":["@a\\ud800:l"]}}',
        '{"type":"m.typing","room_id":"!room:localhost","content":{"x":' + nested(TOO_DEEP) + "}}",
        '{"type":"m.typing","room_id":"!ro\\u0000om:localhost","content":{}}',
    ],
    ids=["lone-surrogate", "too-deep", "nul-room"],
)
async def test_a_bad_ephemeral_entry_is_rejected_alone(appservice: RunningAppservice, entry: str) -> None:
    good = '{"type":"m.typing","room_id":"!room:localhost","content":{"user_ids":[]}}'
    assert await put_raw(appservice, "eph", around(ephemeral=f"[{good},{entry},{good}]")) == 200
    await assert_neighbours_handled(appservice, rejected=1)
    counts = await appservice.inbox._store.counts()
    assert counts.pending + counts.done == 4  # both typing neighbours were stored too


async def test_a_too_deep_device_list_section_is_rejected_alone(appservice: RunningAppservice) -> None:
    body = around(device_lists=f'{{"changed":{nested(TOO_DEEP)}}}')
    assert await put_raw(appservice, "devices", body) == 200
    await assert_neighbours_handled(appservice, rejected=1)


async def test_a_too_deep_unknown_key_is_ignored(appservice: RunningAppservice) -> None:
    body = around(**{"org.example.future": nested(TOO_DEEP)})
    assert await put_raw(appservice, "future", body) == 200
    await assert_neighbours_handled(appservice, rejected=0)


async def test_a_body_too_deep_to_find_its_events_is_400_bad_json(appservice: RunningAppservice) -> None:
    response = await appservice.http.put(
        f"{V1}/transactions/whole", content=nested(TOO_DEEP).encode(), headers=auth()
    )
    assert response.status_code == 400, response.text
    assert response.json()["errcode"] == "M_BAD_JSON"


async def test_an_events_list_entry_too_deep_is_rejected_alone(appservice: RunningAppservice) -> None:
    body = f'{{"events":[{nested(TOO_DEEP)}],"ephemeral":[{nested(TOO_DEEP)}]}}'
    assert await put_raw(appservice, "list", body) == 200
    assert appservice.state.health.rejected_entries == 2


async def test_a_txn_id_with_a_nul_is_stored(appservice: RunningAppservice) -> None:
    assert await put_raw(appservice, "a%00b", around('"broken"')) == 200
    await assert_neighbours_handled(appservice, rejected=1)
    # The same transaction again is a retry: acknowledged, not handled twice.
    assert await put_raw(appservice, "a%00b", around('"broken"')) == 200
    assert appservice.state.health.duplicate_transactions == 1


async def test_a_transaction_the_database_cannot_take_is_503_and_stored_on_the_retry(
    appservice: RunningAppservice, database: Database
) -> None:
    # Not 200 (its events would be lost), not 500: a 503 the homeserver retries, reason logged.
    async with database.write() as conn:
        await conn.execute(text("ALTER TABLE inbox_event RENAME TO inbox_event_away"))
    response = await appservice.http.put(
        f"{V1}/transactions/unstored", content=around().encode(), headers=auth()
    )
    assert response.status_code == 503, response.text
    assert response.json()["errcode"] == "M_UNKNOWN"
    assert response.headers["retry-after"].isdigit()
    async with database.write() as conn:
        await conn.execute(text("ALTER TABLE inbox_event_away RENAME TO inbox_event"))
    assert await put_raw(appservice, "unstored", around()) == 200
    await assert_neighbours_handled(appservice, rejected=0)


async def test_a_ping_body_nested_past_the_recursion_limit_is_400(appservice: RunningAppservice) -> None:
    response = await appservice.http.post(f"{V1}/ping", content=nested(TOO_DEEP).encode(), headers=auth())
    assert response.status_code == 400, response.text
    assert response.json()["errcode"] == "M_BAD_JSON"
