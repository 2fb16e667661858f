"""The metrics move when the thing they count happens: a message each way observes its latency,
each Matrix request is counted under its endpoint's template (never a room or user ID), failures
by reason, the queues' depth and the sessions' states are read at scrape time, a connector's own
metrics land in the same registry, and the delivery path's log records carry their IDs."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import generate_latest

from bridgekit.appservice.metrics import build_registry
from bridgekit.appservice.state import AppserviceState
from bridgekit.connector import SessionState
from bridgekit.core.bridge import Bridge
from bridgekit.core.dispatcher import WorkItem
from bridgekit.core.inbox import Inbox
from bridgekit.events import RemoteMessage
from bridgekit.ids import ChatID, MessageID, RemoteUserID, RoomID, UserID
from bridgekit.log_format import JsonFormatter
from bridgekit.store.inbox import InboxStore
from tests.core.network import NET
from tests.core.wiring import RITA, Middle, middle

SEND_TEMPLATE = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"


def said(message_id: str, text: str) -> RemoteMessage:
    return RemoteMessage(chat_id=ChatID("chat"), message_id=MessageID(message_id), sender_id=RemoteUserID("bob"),
                         text=text, sender_name="Bob")


def value(core: Middle, name: str, **labels: str) -> float:
    return core.metrics.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def inbox_of(core: Middle) -> AsyncIterator[Inbox]:
    """The inbox in front of the router, as the bridge has it: transactions stored, then handled
    by the room's worker (which knows when each arrived)."""

    async def handle(item: WorkItem) -> None:
        await core.router.route(item.event)

    inbox = Inbox(InboxStore(core.database), handle, max_attempts=1, metrics=core.metrics)
    await inbox.start()
    try:
        yield inbox
    finally:
        await inbox.stop(grace_seconds=1)


def transaction(room: RoomID, sender: UserID, body: str, event_id: str) -> bytes:
    return json.dumps({"events": [{
        "event_id": event_id, "room_id": room, "sender": sender, "type": "m.room.message",
        "origin_server_ts": 1_700_000_000_000, "content": {"msgtype": "m.text", "body": body},
    }]}).encode()


async def test_a_message_each_way_moves_its_latency_histogram(core: Middle) -> None:
    room = await core.portal()
    assert value(core, "bridgekit_remote_to_matrix_seconds_count", network=NET) == 0
    await core.emit(said("r1", "from the network"), wait=True)
    assert value(core, "bridgekit_remote_to_matrix_seconds_count", network=NET) == 1
    assert value(core, "bridgekit_remote_to_matrix_seconds_sum", network=NET) > 0

    async with inbox_of(core) as inbox:
        await inbox.accept("t1", transaction(room, RITA, "from Matrix", "$m1"))
        assert await inbox.dispatcher.wait_idle(10)
    assert core.network.lines() == ["bot:relaybot: <Rita> from Matrix"]
    assert value(core, "bridgekit_matrix_to_remote_seconds_count", network=NET) == 1
    assert value(core, "bridgekit_matrix_to_remote_seconds_bucket", network=NET, le="+Inf") == 1


async def test_matrix_requests_are_counted_by_endpoint_template_and_status_without_ids(core: Middle) -> None:
    room = await core.portal()
    await core.emit(said("r1", "hello"), wait=True)
    assert value(core, "bridgekit_matrix_requests_total", method="PUT", endpoint=SEND_TEMPLATE, status="200") == 1
    assert value(core, "bridgekit_matrix_request_seconds_count", method="PUT", endpoint=SEND_TEMPLATE) == 1
    core.homeserver.fail("send", status=500)
    await core.emit(said("r2", "retried"), wait=True)  # the second attempt lands
    assert value(core, "bridgekit_matrix_requests_total", method="PUT", endpoint=SEND_TEMPLATE, status="500") == 1
    assert value(core, "bridgekit_matrix_requests_total", method="PUT", endpoint=SEND_TEMPLATE, status="200") == 2
    assert value(core, "bridgekit_failures_total", direction="to_matrix", reason="MatrixServerError",
                 final="false") == 1

    exposition = generate_latest(core.metrics.registry).decode()
    assert "bridgekit_matrix_requests_total" in exposition
    for identifier in (room, core.ghost("bob"), "%21", "%40"):
        assert identifier not in exposition, f"{identifier} in a label: one series per room or user"


async def test_failures_are_counted_by_direction_reason_and_finality(tmp_path: Path) -> None:
    async with middle(tmp_path, max_attempts=1) as core:
        await core.portal()
        core.homeserver.fail("send", status=403, errcode="M_FORBIDDEN")
        with pytest.raises(Exception):  # noqa: B017,PT011 - DeliveryFailed, its cause the 403
            await core.emit(said("r1", "refused"), wait=True)
        assert value(core, "bridgekit_failures_total", direction="to_matrix", reason="MatrixForbidden",
                     final="true") == 1


def scrape(core: Middle, inbox: Inbox) -> dict[str, float]:
    """What ``/metrics`` shows, as {series: value}, built as the app builds it."""
    state = AppserviceState(
        hs_token=b"t", max_body_bytes=1, inbox=inbox, bridge=cast(Bridge, None), database_dialect="sqlite",
        metrics=core.metrics, outbox=core.remote,
        session_counts=lambda: {(n, s.value): c for (n, s), c in core.sessions.count_by_state().items()},
    )
    registry = build_registry(state)
    return {f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in registry.collect() for sample in family.samples}


async def test_queue_depths_and_sessions_by_state_are_read_when_scraped(core: Middle) -> None:
    await core.portal()
    async with inbox_of(core) as inbox:
        release = core.homeserver.hold("send")
        for i in range(3):
            await core.emit(said(f"r{i}", f"line {i}"))
        await core.sessions.report(NET, None, SessionState.TRANSIENT_DISCONNECT, "ping timeout")
        seen = scrape(core, inbox)
        assert seen["bridgekit_outbox_queued_events[]"] == 3
        assert seen["bridgekit_inbox_queued_events[]"] == 0
        assert seen[f"bridgekit_sessions[('network', '{NET}'), ('state', 'transient-disconnect')]"] == 1
        assert seen[f"bridgekit_sessions[('network', '{NET}'), ('state', 'connected')]"] == 0
        assert any(name.startswith("process_cpu_seconds_total") for name in seen)
        assert any(name.startswith("python_gc_objects_collected_total") for name in seen)

        release.set()
        await core.delivered()
        await core.sessions.report(NET, None, SessionState.CONNECTED, None)
        seen = scrape(core, inbox)  # a second app of the same bridge registers nothing twice
        assert seen["bridgekit_outbox_queued_events[]"] == 0
        assert seen["bridgekit_remote_events_posted_total[]"] == 3
        assert seen[f"bridgekit_sessions[('network', '{NET}'), ('state', 'connected')]"] == 1
        assert seen[f"bridgekit_sessions[('network', '{NET}'), ('state', 'transient-disconnect')]"] == 0


async def test_a_connector_registers_its_own_metrics_through_its_context(core: Middle) -> None:
    requests = core.ctx.metrics.counter("hooks", "Hook requests by outcome", ["outcome"])
    requests.inc(outcome="posted")
    requests.inc(outcome="posted")
    again = core.ctx.metrics.counter("hooks", "Hook requests by outcome", ["outcome"])  # same family
    again.inc(outcome="rate_limited")
    core.ctx.metrics.gauge("links", "Links up").set(2)
    core.ctx.metrics.histogram("parse_seconds", "Parse time").observe(0.01)
    assert value(core, "bridgekit_connector_hooks_total", connector=NET, outcome="posted") == 2
    assert value(core, "bridgekit_connector_hooks_total", connector=NET, outcome="rate_limited") == 1
    assert value(core, "bridgekit_connector_links", connector=NET) == 2
    assert value(core, "bridgekit_connector_parse_seconds_count", connector=NET) == 1
    with pytest.raises(ValueError, match="other labels"):
        core.ctx.metrics.counter("hooks", "Hook requests", ["kind"])
    with pytest.raises(ValueError, match="bridgekit's"):
        core.ctx.metrics.counter("other", "x", ["connector"])


@contextlib.contextmanager
def json_records() -> Iterator[list[str]]:
    """The lines the bridgekit loggers write in ``logging.format: json``, at DEBUG."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bridgekit")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def test_json_log_records_of_the_delivery_paths_carry_the_event_and_remote_ids(core: Middle) -> None:
    room = await core.portal()
    with json_records() as lines:
        await core.say(room, RITA, "logged")
        posted = await core.emit(said("r9", "back"), wait=True)
    records = [json.loads(line) for line in lines]
    [sent] = [r for r in records if r.get("event_id") == "$matrix1"]
    assert (sent["level"], sent["logger"]) == ("DEBUG", "bridgekit.core.matrix_to_remote")
    assert (sent["network"], sent["room_id"], sent["remote_id"]) == (NET, room, "m1")
    assert sent["ts"].endswith("Z")
    [back] = [r for r in records if r.get("event_id") == posted]
    assert (back["remote_id"], back["chat_id"], back["network"]) == ("r9", "chat", NET)
