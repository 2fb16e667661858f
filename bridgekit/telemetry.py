"""The bridge's measured instruments: what has to be observed when it happens (latencies, Matrix
API calls, failures), in a Prometheus registry of the bridge's own.

Numbers the bridge already keeps (queue depths, session states, counters of the inbox) are not
here: ``appservice/metrics.py`` reads them at scrape time, which costs the hot path nothing. What
is here is observed in place, once per delivered message or per Matrix request, never per stored
event: a histogram observation is about a microsecond, next to the milliseconds of the network
call it measures.

A leaf module (it imports no other layer), so the Matrix client, the core and the connector
contract may all take a :class:`BridgeMetrics`. One per bridge, no process-global state: two
bridges in one process (tests) keep their numbers apart.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds: a message is bridged in milliseconds when all is well, but IRC's output pacing and a
homeserver's rate limit hold some back for tens of seconds, and a reconnect for minutes."""

MATRIX_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class BridgeMetrics:
    """The instruments of one bridge, registered in :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.matrix_to_remote_seconds = Histogram(
            "bridgekit_matrix_to_remote_seconds",
            "Matrix -> remote: from the homeserver transaction's arrival to the connector's send returning "
            "(or, for a message the connector queues, settling)",
            ["network"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.remote_to_matrix_seconds = Histogram(
            "bridgekit_remote_to_matrix_seconds",
            "Remote -> Matrix: from the connector's emit to the homeserver's answer to the Matrix send",
            ["network"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.matrix_requests = Counter(
            "bridgekit_matrix_requests",
            "Requests to the homeserver's API, each attempt, by endpoint template and HTTP status "
            "('error' when no answer came)",
            ["method", "endpoint", "status"], registry=self.registry,
        )
        self.matrix_request_seconds = Histogram(
            "bridgekit_matrix_request_seconds", "Duration of one request to the homeserver's API",
            ["method", "endpoint"], registry=self.registry, buckets=MATRIX_REQUEST_BUCKETS,
        )
        self.failures = Counter(
            "bridgekit_failures",
            "Failed attempts to bridge an event, by direction (to_remote, to_matrix), reason (the error's "
            "type) and whether it was the last attempt (final: given up on)",
            ["direction", "reason", "final"], registry=self.registry,
        )
        self._connector_metrics: dict[str, tuple[str, tuple[str, ...], Counter | Gauge | Histogram]] = {}
        self._collectors: set[str] = set()
        self._lock = threading.Lock()

    def add_collector(self, key: str, register: Callable[[CollectorRegistry], object]) -> None:
        """Register a collector read at scrape time (``register`` makes it in the registry it is
        given), once per ``key``: an app per listener may ask again."""
        with self._lock:
            if key in self._collectors:
                return
            self._collectors.add(key)
        register(self.registry)

    def observe_matrix_request(self, method: str, endpoint: str, status: str, seconds: float) -> None:
        self.matrix_requests.labels(method, endpoint, status).inc()
        self.matrix_request_seconds.labels(method, endpoint).observe(seconds)

    def failure(self, direction: str, error: BaseException, *, final: bool) -> None:
        self.failures.labels(direction, type(error).__name__, "true" if final else "false").inc()

    def connector(self, name: str) -> ConnectorMetrics:
        """The metrics one connector registers itself (``ctx.metrics``)."""
        return ConnectorMetrics(self, name)

    def _connector_metric(
        self, kind: type[Counter] | type[Gauge] | type[Histogram], name: str, documentation: str,
        labels: Sequence[str],
    ) -> Counter | Gauge | Histogram:
        """One family per name, shared by every connector that registers it (two sections of
        the webhook connector count into one family, told apart by their ``connector`` label)."""
        if not _NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"{name!r} is not a metric name (letters, digits and _; not starting with a digit)")
        if "connector" in labels:
            raise ValueError("the label 'connector' is bridgekit's: it names the connector section")
        full_name = f"bridgekit_connector_{name}"
        label_names = ("connector", *labels)
        with self._lock:
            known = self._connector_metrics.get(full_name)
            if known is not None:
                known_kind, known_labels, metric = known
                if known_kind != kind.__name__ or known_labels != label_names:
                    raise ValueError(f"the metric {full_name} was registered before as another kind or with "
                                     "other labels")
                return metric
            metric = kind(full_name, documentation, label_names, registry=self.registry)
            self._connector_metrics[full_name] = (kind.__name__, label_names, metric)
            return metric


class ConnectorCounter:
    """A counter of one connector: ``inc(outcome="accepted")``."""

    def __init__(self, metric: Counter, connector: str) -> None:
        self._metric, self._connector = metric, connector

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._metric.labels(connector=self._connector, **labels).inc(amount)


class ConnectorGauge:
    """A gauge of one connector: ``set(3, state="up")``."""

    def __init__(self, metric: Gauge, connector: str) -> None:
        self._metric, self._connector = metric, connector

    def set(self, value: float, **labels: str) -> None:
        self._metric.labels(connector=self._connector, **labels).set(value)


class ConnectorHistogram:
    """A histogram of one connector: ``observe(0.25, kind="push")``."""

    def __init__(self, metric: Histogram, connector: str) -> None:
        self._metric, self._connector = metric, connector

    def observe(self, value: float, **labels: str) -> None:
        self._metric.labels(connector=self._connector, **labels).observe(value)


class ConnectorMetrics:
    """What ``ctx.metrics`` gives a connector: its own counters, gauges and histograms, named
    ``bridgekit_connector_<name>`` with a ``connector`` label (its section's name) added to the
    labels it declares. Register in ``__init__``; registering the same name again returns the
    same family. Label values must come from a small fixed set (an outcome, a kind), never from
    user input or IDs: every distinct value is a series kept for the life of the process."""

    def __init__(self, metrics: BridgeMetrics, connector: str) -> None:
        self._metrics, self._connector = metrics, connector

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> ConnectorCounter:
        metric = self._metrics._connector_metric(Counter, name, documentation, labels)
        assert isinstance(metric, Counter)
        return ConnectorCounter(metric, self._connector)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> ConnectorGauge:
        metric = self._metrics._connector_metric(Gauge, name, documentation, labels)
        assert isinstance(metric, Gauge)
        return ConnectorGauge(metric, self._connector)

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = ()) -> ConnectorHistogram:
        metric = self._metrics._connector_metric(Histogram, name, documentation, labels)
        assert isinstance(metric, Histogram)
        return ConnectorHistogram(metric, self._connector)


__all__ = [
    "LATENCY_BUCKETS", "BridgeMetrics", "ConnectorCounter", "ConnectorGauge", "ConnectorHistogram", "ConnectorMetrics",
]
