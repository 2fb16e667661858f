"""Transaction PUTs are answered before FastAPI's stack (``bridgekit/appservice/transaction_intake.py``):
what the homeserver and the operator see must be what the FastAPI route gave them."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bridgekit.store import Database
from tests.appservice.harness import HS_TOKEN, RunningAppservice, auth, message, running_appservice

pytestmark = pytest.mark.integration


@pytest.fixture
async def appservice(database: Database) -> Any:
    async with running_appservice(database) as running:
        yield running


async def test_the_answer_is_an_empty_json_object_after_the_events_are_handled(appservice: RunningAppservice) -> None:
    response = await appservice.http.put("/_matrix/app/v1/transactions/a%2Fb", headers=auth(),
                                         content=json.dumps({"events": [message("$intake")]}).encode())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"{}"
    await appservice.connector.wait_for(1)
    assert [event.event_id for event in appservice.connector.events] == ["$intake"]
    assert appservice.state.health.transactions == 1


async def test_the_legacy_path_and_query_token_are_logged_redacted(
    appservice: RunningAppservice, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bridgekit.access"):
        ok = await appservice.http.put(f"/transactions/legacy-1?access_token={HS_TOKEN}",
                                       content=json.dumps({"events": [message("$legacy")]}).encode())
        refused = await appservice.http.put("/transactions/legacy-2?access_token=wrong&access_token=" + HS_TOKEN,
                                            content=b'{"events": []}')
    assert ok.status_code == 200
    assert refused.status_code == 200  # the last value of a repeated parameter counts, as in Starlette
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert '"PUT /transactions/legacy-1?access_token=<redacted>" 200' in logged
    assert HS_TOKEN not in logged


async def test_a_body_past_the_limit_is_413_and_counts_as_no_transaction(appservice: RunningAppservice) -> None:
    appservice.state.max_body_bytes = 100
    response = await appservice.http.put("/_matrix/app/v1/transactions/big", headers=auth(),
                                         content=json.dumps({"events": [message("$big", body="x" * 200)]}).encode())
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"
    assert appservice.state.health.transactions == 0
