"""Prometheus metrics at ``/metrics``: the bridge's instruments, plus what it already counts, read
when scraped.

Two kinds of numbers. What must be observed when it happens (delivery latencies, Matrix API
calls, failures, the connectors' own metrics) is in :class:`bridgekit.telemetry.BridgeMetrics`,
observed once per delivered message or request. What the bridge keeps anyway (queue depths,
session states, the inbox's counters) is read here by a custom collector at scrape time: nothing
is counted twice and nothing is added to the path of a stored event. Process metrics (CPU,
memory, file descriptors, garbage collection) come from prometheus_client's own collectors.
The registry is the bridge's own (no process-global state, so two apps in one process - tests -
do not collide). Serve it on the metrics listener only (it needs no token).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridgekit.appservice.state import AppserviceState

router = APIRouter()


class BridgeCollector(Collector):
    def __init__(self, state: AppserviceState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        health = self._state.health
        inbox = self._state.inbox
        dispatcher = inbox.dispatcher
        yield _counter("bridgekit_transactions", "Homeserver transactions acknowledged", health.transactions)
        yield _counter(
            "bridgekit_duplicate_transactions",
            "Transactions the homeserver sent again (acknowledged, not reprocessed)",
            health.duplicate_transactions,
        )
        yield _counter(
            "bridgekit_rejected_entries", "Malformed transaction entries stored as rejected", health.rejected_entries
        )
        yield _counter("bridgekit_events_handled", "Inbox events handled", inbox.handled)
        yield _counter("bridgekit_events_failed", "Inbox events given up on after every attempt", inbox.failed)
        yield _gauge("bridgekit_inbox_queued_events", "Matrix events queued in memory for the room workers, "
                     "being handled or being delivered (the inbox depth)", dispatcher.queued)
        yield _gauge("bridgekit_inbox_active_rooms", "Rooms with events being handled", dispatcher.active_rooms)
        yield _gauge(
            "bridgekit_inbox_spilled", "1 while accepted events wait in the database only", int(inbox.spilled)
        )
        outbox = self._state.outbox
        if outbox is not None:
            yield _gauge("bridgekit_outbox_queued_events", "Remote events emitted and not yet posted on Matrix "
                         "(the outbox depth)", outbox.dispatcher.queued)
            yield _gauge("bridgekit_outbox_active_portals", "Portals with remote events being posted",
                         outbox.dispatcher.active_rooms)
            yield _counter("bridgekit_remote_events_posted", "Remote events posted on Matrix", outbox.sent)
            yield _counter("bridgekit_remote_events_failed", "Remote events given up on after every attempt",
                           outbox.failed)
        sessions = GaugeMetricFamily(
            "bridgekit_sessions", "Sessions on the remote networks (the bot's, puppets', virtual identities') "
            "by network and the state they last reported", labels=["network", "state"])
        for (network, state), count in sorted(self._state.session_counts().items()):
            sessions.add_metric([network, state], count)
        yield sessions
        yield _gauge("bridgekit_ready", "1 once transactions are accepted", int(health.ready))
        reachable = health.homeserver_reachable
        if reachable is not None:
            yield _gauge("bridgekit_homeserver_reachable", "1 when the start-up ping succeeded", int(reachable))


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def build_registry(state: AppserviceState) -> CollectorRegistry:
    """The registry ``/metrics`` serves: the bridge's instruments, with the collectors read at
    scrape time added once."""
    metrics = state.metrics
    metrics.add_collector("bridge", lambda registry: registry.register(BridgeCollector(state)))
    metrics.add_collector("process", lambda registry: ProcessCollector(registry=registry))
    metrics.add_collector("platform", lambda registry: PlatformCollector(registry=registry))
    metrics.add_collector("gc", lambda registry: GCCollector(registry=registry))
    return metrics.registry


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["BridgeCollector", "build_registry", "router"]
