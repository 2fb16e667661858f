"""The Application Service API checklist (shared spec/CHECKLIST.md), item by item.

Each test names the checklist IDs it covers. The appservice runs in-process on a real database
(SQLite, and PostgreSQL when configured), so "processed once" is counted at the connector.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from bridgekit.store import Database
from tests.appservice.harness import (
    HS_TOKEN,
    KNOWN_ALIAS,
    KNOWN_USER,
    RunningAppservice,
    auth,
    message,
    running_appservice,
)

pytestmark = pytest.mark.integration

V1 = "/_matrix/app/v1"
# (method, path, body) for every authenticated endpoint, prefixed and legacy (AUTH-j).
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("PUT", f"{V1}/transactions/auth-probe", {"events": []}),
    ("PUT", "/transactions/auth-probe-legacy", {"events": []}),
    ("GET", f"{V1}/users/%40_bk_known%3Alocalhost", None),
    ("GET", "/users/%40_bk_known%3Alocalhost", None),
    ("GET", f"{V1}/rooms/%23_bk_known%3Alocalhost", None),
    ("GET", "/rooms/%23_bk_known%3Alocalhost", None),
    ("GET", f"{V1}/thirdparty/protocol/testnet", None),
    ("GET", "/_matrix/app/unstable/thirdparty/protocol/testnet", None),
    ("GET", f"{V1}/thirdparty/user?userid=%40_bk_known%3Alocalhost", None),
    ("GET", f"{V1}/thirdparty/location?alias=%23_bk_known%3Alocalhost", None),
    ("POST", f"{V1}/ping", {}),
    ("POST", "/_matrix/app/unstable/fi.mau.msc2659/ping", {}),
]


@pytest.fixture
async def appservice(database: Database) -> Any:
    async with running_appservice(database) as running:
        yield running


def assert_matrix_error(response: httpx.Response, status: int, errcode: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errcode"] == errcode
    assert isinstance(body.get("error"), str)


async def put_txn(appservice: RunningAppservice, txn_id: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await appservice.http.put(f"{V1}/transactions/{txn_id}", content=content, headers=auth())


# --- §2 authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_auth_missing_token_401_wrong_token_403_right_token_ok(
    appservice: RunningAppservice, method: str, path: str, body: Any
) -> None:
    """AUTH-1, AUTH-2, AUTH-3, AUTH-4, AUTH-10."""
    http = appservice.http
    missing = await http.request(method, path, json=body)
    assert_matrix_error(missing, 401, "M_UNAUTHORIZED")
    wrong = await http.request(method, path, json=body, headers=auth("not-the-hs-token-at-all"))
    assert_matrix_error(wrong, 403, "M_FORBIDDEN")
    right = await http.request(method, path, json=body, headers=auth())
    assert right.status_code == 200, right.text


async def test_auth_rejects_bare_tokens_and_other_schemes(appservice: RunningAppservice) -> None:
    """AUTH-5: a bare token or another scheme is not a bearer token."""
    for header in (HS_TOKEN, f"Basic {HS_TOKEN}", "Bearer", f"Bearer {HS_TOKEN}x"):
        response = await appservice.http.post(f"{V1}/ping", json={}, headers={"Authorization": header})
        assert response.status_code in (401, 403), header
        assert response.json()["errcode"] in ("M_UNAUTHORIZED", "M_FORBIDDEN")


async def test_auth_scheme_is_case_insensitive(appservice: RunningAppservice) -> None:
    """AUTH-6 (RFC 9110: the scheme is case-insensitive)."""
    response = await appservice.http.post(
        f"{V1}/ping", json={}, headers={"Authorization": f"bearer {HS_TOKEN}"}
    )
    assert response.status_code == 200


async def test_auth_header_and_query_must_both_match(appservice: RunningAppservice) -> None:
    """AUTH-7 and AUTH-8 (legacy query parameter)."""
    http = appservice.http
    query_only = await http.post(f"{V1}/ping?access_token={HS_TOKEN}", json={})
    assert query_only.status_code == 200
    wrong_query = await http.post(f"{V1}/ping?access_token=wrong", json={}, headers=auth())
    assert_matrix_error(wrong_query, 403, "M_FORBIDDEN")
    wrong_header = await http.post(
        f"{V1}/ping?access_token={HS_TOKEN}", json={}, headers=auth("wrong-token")
    )
    assert_matrix_error(wrong_header, 403, "M_FORBIDDEN")


async def test_unauthenticated_request_cannot_burn_a_txn_id(appservice: RunningAppservice) -> None:
    """AUTH-9: auth is checked before the txnId is recorded."""
    body = {"events": [message("$burn")]}
    refused = await appservice.http.put(f"{V1}/transactions/77", json=body)
    assert refused.status_code == 401
    accepted = await put_txn(appservice, "77", body)
    assert accepted.status_code == 200
    events = await appservice.connector.wait_for(1)
    assert [e.event_id for e in events] == ["$burn"]


async def test_access_log_never_records_tokens(
    appservice: RunningAppservice, caplog: pytest.LogCaptureFixture
) -> None:
    """Access logs redact the legacy access_token query parameter and webhook secrets."""
    with caplog.at_level(logging.INFO, logger="bridgekit.access"):
        await appservice.http.post(f"{V1}/ping?access_token={HS_TOKEN}", json={})
        await appservice.http.post("/webhook/s3cr3t-hook-token/extra", json={})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/_matrix/app/v1/ping" in logged
    assert HS_TOKEN not in logged
    assert "s3cr3t-hook-token" not in logged
    assert "<redacted>" in logged


# --- §3 routing ------------------------------------------------------------------------------------


async def test_unknown_route_is_m_unrecognized(appservice: RunningAppservice) -> None:
    """UR-1, UR-e (Synapse probes MSC3983/3984 endpoints and needs M_UNRECOGNIZED)."""
    for path in (f"{V1}/nonexistent", "/_matrix/app/unstable/org.matrix.msc3983/keys/claim", "/x"):
        response = await appservice.http.post(path, json={}, headers=auth())
        assert_matrix_error(response, 404, "M_UNRECOGNIZED")


async def test_wrong_method_is_405_m_unrecognized_with_allow(appservice: RunningAppservice) -> None:
    """UR-2."""
    response = await appservice.http.get(f"{V1}/transactions/1", headers=auth())
    assert_matrix_error(response, 405, "M_UNRECOGNIZED")
    assert "PUT" in response.headers["allow"]


# --- §4 transactions -------------------------------------------------------------------------------


async def test_transaction_is_acknowledged_and_handled(appservice: RunningAppservice) -> None:
    """TXN-1."""
    response = await put_txn(appservice, "1", {"events": [message("$one"), message("$two")]})
    assert response.status_code == 200
    assert response.json() == {}
    events = await appservice.connector.wait_for(2)
    assert [e.event_id for e in events] == ["$one", "$two"]


async def test_retried_transaction_is_acknowledged_but_handled_once(appservice: RunningAppservice) -> None:
    """TXN-2, TXN-3: Synapse re-serialises a retry (unsigned.age changes); still one handling."""
    first = {"events": [message("$retry", unsigned={"age": 10})]}
    retry = {"events": [message("$retry", unsigned={"age": 2010})]}
    assert (await put_txn(appservice, "5", first)).status_code == 200
    assert (await put_txn(appservice, "5", retry)).status_code == 200
    await appservice.inbox.dispatcher.wait_idle(10)
    assert [e.event_id for e in appservice.connector.events] == ["$retry"]
    assert appservice.state.health.duplicate_transactions == 1


async def test_reused_txn_id_with_new_events_is_processed(
    appservice: RunningAppservice, caplog: pytest.LogCaptureFixture
) -> None:
    """TXN-f: a homeserver whose database was reset starts its txnIds at 1 again."""
    assert (await put_txn(appservice, "1", {"events": [message("$before-reset")]})).status_code == 200
    with caplog.at_level(logging.WARNING):
        assert (await put_txn(appservice, "1", {"events": [message("$after-reset")]})).status_code == 200
    events = await appservice.connector.wait_for(2)
    assert [e.event_id for e in events] == ["$before-reset", "$after-reset"]
    assert any("used before" in record.getMessage() for record in caplog.records)


async def test_events_are_deduplicated_across_transactions(appservice: RunningAppservice) -> None:
    """An event delivered in two different transactions is handled once."""
    assert (await put_txn(appservice, "10", {"events": [message("$dup"), message("$a")]})).status_code == 200
    assert (await put_txn(appservice, "11", {"events": [message("$dup"), message("$b")]})).status_code == 200
    events = await appservice.connector.wait_for(3)
    await appservice.inbox.dispatcher.wait_idle(10)
    assert [e.event_id for e in events] == ["$dup", "$a", "$b"]


@pytest.mark.parametrize("txn_id", ["abc-DEF_123", "with%20space", "slash%2Finside", "m1700000000.42"])
async def test_txn_id_is_any_path_safe_string(appservice: RunningAppservice, txn_id: str) -> None:
    """TXN-7."""
    response = await put_txn(appservice, txn_id, {"events": [message(f"$txn-{len(txn_id)}")]})
    assert response.status_code == 200


async def test_ephemeral_to_device_and_device_lists_are_accepted(appservice: RunningAppservice) -> None:
    """TXN-8..11 and EPH-f, E2E-a..d: stable and unstable names, the PDUs still handled."""
    typing = {"type": "m.typing", "room_id": "!room:localhost", "content": {"user_ids": ["@a:localhost"]}}
    bodies = [
        {"events": [message("$e1")], "ephemeral": [typing]},
        {"events": [message("$e2")], "de.sorunome.msc2409.ephemeral": [typing]},
        {
            "events": [message("$e3")],
            "de.sorunome.msc2409.to_device": [
                {"type": "m.room_key_request", "sender": "@a:localhost", "content": {},
                 "to_user_id": "@_bk_x:localhost", "to_device_id": "D"}
            ],
            "org.matrix.msc3202.device_lists": {"changed": ["@a:localhost"], "left": []},
            "org.matrix.msc3202.device_one_time_keys_count": {"@_bk_x:localhost": {"D": {"curve": 5}}},
            "org.matrix.msc3202.device_one_time_key_counts": {"@_bk_x:localhost": {"D": {"curve": 5}}},
            "org.matrix.msc3202.device_unused_fallback_key_types": {"@_bk_x:localhost": {"D": []}},
        },
        {"events": [message("$e4")], "device_lists": {"changed": [], "left": []}, "to_device": []},
    ]
    for number, body in enumerate(bodies):
        assert (await put_txn(appservice, f"eph{number}", body)).status_code == 200
    events = await appservice.connector.wait_for(4)
    assert [e.event_id for e in events] == ["$e1", "$e2", "$e3", "$e4"]


async def test_malformed_extensions_never_drop_pdus(appservice: RunningAppservice) -> None:
    """TXN-12, E2E-f."""
    body = {
        "events": [message("$kept")],
        "ephemeral": "not a list",
        "org.matrix.msc3202.device_lists": ["not", "an", "object"],
        "to_device": [7],
    }
    assert (await put_txn(appservice, "badext", body)).status_code == 200
    events = await appservice.connector.wait_for(1)
    assert [e.event_id for e in events] == ["$kept"]
    assert appservice.state.health.rejected_entries == 3


async def test_unknown_keys_and_event_types_are_tolerated(appservice: RunningAppservice) -> None:
    """TXN-13, TXN-14, TXN-g (state told apart by state_key)."""
    state_event = message("$state", type="org.example.custom", state_key="", content={"x": 1})
    body = {
        "events": [message("$custom", type="org.example.unknown", content={}), state_event],
        "org.example.future_field": {"whatever": True},
    }
    assert (await put_txn(appservice, "unk", body)).status_code == 200
    events = await appservice.connector.wait_for(2)
    assert [(e.event_id, e.is_state) for e in events] == [("$custom", False), ("$state", True)]


async def test_malformed_entries_are_rejected_without_dropping_neighbours(
    appservice: RunningAppservice,
) -> None:
    """TXN-15 (bad content), TXN-16 (bad envelope), TXN-k: 200, neighbours handled."""
    body = {
        "events": [
            message("$good1"),
            "not an object",
            {"event_id": "$no-room", "type": "m.room.message", "sender": "@a:l",
             "origin_server_ts": 1, "content": {}},
            message("$bad-content", content="a string"),
            message("$bad-ts", origin_server_ts="yesterday"),
            message("$good2"),
        ]
    }
    response = await put_txn(appservice, "mixed", body)
    assert response.status_code == 200
    events = await appservice.connector.wait_for(2)
    await appservice.inbox.dispatcher.wait_idle(10)
    assert [e.event_id for e in events] == ["$good1", "$good2"]
    assert appservice.state.health.rejected_entries == 4
    counts = await appservice.inbox._store.counts()
    assert counts.rejected == 4  # kept for inspection, not lost


async def test_non_json_body_is_400_not_json(appservice: RunningAppservice) -> None:
    """TXN-l / TXN-18."""
    response = await put_txn(appservice, "nj", b"{not json")
    assert_matrix_error(response, 400, "M_NOT_JSON")


@pytest.mark.parametrize("body", [[], {"events": 5}, {"no_events": []}, "string"])
async def test_wrong_shape_body_is_400_bad_json(appservice: RunningAppservice, body: Any) -> None:
    """TXN-l / TXN-19."""
    response = await put_txn(appservice, "shape", body)
    assert_matrix_error(response, 400, "M_BAD_JSON")


async def test_large_transactions_are_accepted(appservice: RunningAppservice) -> None:
    """TXN-m / TXN-20, TXN-21: 1,000 events, and a 33 MiB body (at least 32 MiB is required)."""
    many = {"events": [message(f"$many{i}") for i in range(1000)]}
    assert (await put_txn(appservice, "many", many)).status_code == 200
    big_events = [message(f"$big{i}", body="x" * 60_000) for i in range(580)]
    big = json.dumps({"events": big_events}).encode()
    assert len(big) > 33 * 1024 * 1024
    assert (await put_txn(appservice, "big", big)).status_code == 200
    events = await appservice.connector.wait_for(1580, within=60)
    assert len({e.event_id for e in events}) == 1580


async def test_body_over_the_limit_is_413(appservice: RunningAppservice) -> None:
    limit = appservice.state.max_body_bytes
    response = await put_txn(appservice, "huge", b" " * (limit + 1))
    assert_matrix_error(response, 413, "M_TOO_LARGE")


# --- §7 ping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{}", b'{"transaction_id": null}', b'{"transaction_id": "abc"}', b""])
async def test_ping_answers_empty_object(appservice: RunningAppservice, body: bytes) -> None:
    """PING-1, PING-2, PING-3."""
    response = await appservice.http.post(f"{V1}/ping", content=body, headers=auth())
    assert response.status_code == 200
    assert response.json() == {}


@pytest.mark.parametrize(("body", "errcode"), [(b"[1]", "M_BAD_JSON"), (b"{x", "M_NOT_JSON")])
async def test_ping_with_bad_body_is_4xx(appservice: RunningAppservice, body: bytes, errcode: str) -> None:
    """PING-4."""
    response = await appservice.http.post(f"{V1}/ping", content=body, headers=auth())
    assert_matrix_error(response, 400, errcode)


# --- §8 queries -------------------------------------------------------------------------------------


async def test_user_query(appservice: RunningAppservice) -> None:
    """QU-1, QU-2, QU-3 (registered before the 200), Q-e (percent-decoded)."""
    unknown = await appservice.http.get(f"{V1}/users/%40_bk_nobody%3Alocalhost", headers=auth())
    assert_matrix_error(unknown, 404, "M_NOT_FOUND")
    known = await appservice.http.get(f"{V1}/users/%40_bk_known%3Alocalhost", headers=auth())
    assert known.status_code == 200
    assert known.json() == {}
    assert appservice.registered == [KNOWN_USER]


async def test_alias_query(appservice: RunningAppservice) -> None:
    """QR-1, QR-2, QR-3, Q-e."""
    unknown = await appservice.http.get(f"{V1}/rooms/%23_bk_nothing%3Alocalhost", headers=auth())
    assert_matrix_error(unknown, 404, "M_NOT_FOUND")
    known = await appservice.http.get(f"{V1}/rooms/%23_bk_known%3Alocalhost", headers=auth())
    assert known.status_code == 200
    assert known.json() == {}


# --- §9 third-party lookups -------------------------------------------------------------------------


async def test_thirdparty_protocol_metadata(appservice: RunningAppservice) -> None:
    """TP-a, TP-b: every user/location field has a field type; instances listed."""
    response = await appservice.http.get(f"{V1}/thirdparty/protocol/testnet", headers=auth())
    assert response.status_code == 200
    protocol = response.json()
    for key in ("user_fields", "location_fields", "icon", "field_types", "instances"):
        assert key in protocol
    for name in protocol["user_fields"] + protocol["location_fields"]:
        assert set(protocol["field_types"][name]) == {"regexp", "placeholder"}
    unknown = await appservice.http.get(f"{V1}/thirdparty/protocol/nonet", headers=auth())
    assert_matrix_error(unknown, 404, "M_NOT_FOUND")


async def test_thirdparty_lookups(appservice: RunningAppservice) -> None:
    http = appservice.http
    users = await http.get(f"{V1}/thirdparty/user/testnet?nick=known", headers=auth())
    assert users.json() == [{"userid": KNOWN_USER, "protocol": "testnet", "fields": {"nick": "known"}}]
    places = await http.get(f"{V1}/thirdparty/location/testnet?channel=%23chat", headers=auth())
    assert places.json()[0]["alias"] == KNOWN_ALIAS
    nobody = await http.get(f"{V1}/thirdparty/user/testnet?nick=ghost", headers=auth())
    assert_matrix_error(nobody, 404, "M_NOT_FOUND")
    reverse_user = await http.get(f"{V1}/thirdparty/user?userid=%40_bk_known%3Alocalhost", headers=auth())
    assert reverse_user.json()[0]["fields"] == {"nick": "known"}
    reverse_alias = await http.get(f"{V1}/thirdparty/location?alias=%23_bk_known%3Alocalhost", headers=auth())
    assert reverse_alias.json()[0]["protocol"] == "testnet"
    missing = await http.get(f"{V1}/thirdparty/user", headers=auth())
    assert_matrix_error(missing, 400, "M_MISSING_PARAM")


# --- health -----------------------------------------------------------------------------------------


async def test_health_endpoints_need_no_token(appservice: RunningAppservice) -> None:
    for path in ("/health", "/health/live", "/health/ready"):
        response = await appservice.http.get(path)
        assert response.status_code == 200, path
    details = (await appservice.http.get("/health")).json()
    assert details["status"] == "ok"
    assert details["connectors"] == ["example"]
    assert HS_TOKEN not in json.dumps(details)


async def test_metrics_count_what_happened(appservice: RunningAppservice) -> None:
    await put_txn(appservice, "m1", {"events": [message("$m1"), "broken"]})
    await put_txn(appservice, "m1", {"events": [message("$m1"), "broken"]})
    await appservice.connector.wait_for(1)
    await appservice.inbox.dispatcher.wait_idle(10)
    response = await appservice.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert "bridgekit_transactions_total 2.0" in lines
    assert "bridgekit_duplicate_transactions_total 1.0" in lines
    assert "bridgekit_rejected_entries_total 1.0" in lines
    assert "bridgekit_events_handled_total 1.0" in lines
    assert "bridgekit_inbox_queued_events 0.0" in lines
    assert HS_TOKEN not in response.text
