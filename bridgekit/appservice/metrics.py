"""Prometheus metrics at ``/metrics``, read from the bridge's own counters when scraped.

Nothing is counted twice and nothing is added to the hot path: a custom collector reads the
numbers the inbox and the appservice already keep, at scrape time, into a registry of the app's
own (no process-global state, so two apps in one process - tests - do not collide).
Serve it on the internal listener only, like the rest of the appservice (it needs no token).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
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
        yield _gauge("bridgekit_inbox_queued_events", "Events queued in memory for the room workers", dispatcher.queued)
        yield _gauge("bridgekit_inbox_active_rooms", "Rooms with events being handled", dispatcher.active_rooms)
        yield _gauge(
            "bridgekit_inbox_spilled", "1 while accepted events wait in the database only", int(inbox.spilled)
        )
        yield _gauge("bridgekit_ready", "1 once transactions are accepted", int(health.ready))
        reachable = health.homeserver_reachable
        if reachable is not None:
            yield _gauge("bridgekit_homeserver_reachable", "1 when the start-up ping succeeded", int(reachable))


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def build_registry(state: AppserviceState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(state))
    return registry


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["BridgeCollector", "build_registry", "router"]
