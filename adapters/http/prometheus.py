"""The app's metrics kept by prometheus_client (names and labels: adapters/http/metrics.py).

In its multiprocess mode, every worker of a server writes its values to files of its own in one
directory, PROMETHEUS_MULTIPROC_DIR, and a scrape (answered by any worker) adds up every file
in it; files of workers that exited stay, so counts never go back when a worker is replaced.
`python -m adapters.serve` makes a fresh directory for each server it starts and sets the
variable before any worker imports prometheus_client, which chooses its mode at import. Without
it (tests, a bare `uvicorn` without the variable), each process counts its own requests in a
registry of its app.

Every metric here is a counter or a histogram: nothing needs `mark_process_dead` (live gauges
only). The service must never fail because of its metrics: a value that cannot be written (the
directory removed, a full disk) is logged once and the request goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from adapters.http.metrics import FAMILIES, LATENCY_BUCKETS, METHODS, PREFIX, UNMATCHED_ROUTE, Increment
from adapters.logs import JsonMessage

logger = logging.getLogger("sklearn_serve.http")


class PrometheusMetrics:
    """The metrics of one app: written where prometheus_client's mode says, and scraped from
    `multiprocess_dir` (every worker's files) or, when None, from this app's own registry."""

    def __init__(self, multiprocess_dir: Path | None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.families: dict[str, Any] = {}
        for name, kind, help_text, labels in FAMILIES:
            # prometheus_client adds a counter's `_total` itself.
            if kind == "counter":
                metric: Any = Counter(f"{PREFIX}_{name.removesuffix('_total')}", help_text, labels,
                                      registry=self.registry)
            else:
                metric = Histogram(f"{PREFIX}_{name}", help_text, labels, buckets=LATENCY_BUCKETS,
                                   registry=self.registry)
            self.families[name] = metric
        self._requests = self.families["http_requests_total"]
        self._latency = self.families["http_request_duration_seconds"]
        # Labelled children, looked up once per label values: labels() checks and locks on every call.
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._failed = False

    def request(
        self, route: str | None, method: str, status: int, seconds: float, events: Iterable[Increment] = ()
    ) -> None:
        """One answered request (`route` is the matched route template, None when none matched),
        and what else it did (`prediction_events`, `outcome_events`)."""
        labels = (route or UNMATCHED_ROUTE, method if method in METHODS else "OTHER")
        try:
            self._child("http_requests_total", (*labels, str(status))).inc()
            self._child("http_request_duration_seconds", labels).observe(seconds)
            for family, values, amount in events:
                self._child(family, values).inc(amount)
        except OSError as e:
            if not self._failed:
                self._failed = True
                logger.warning(JsonMessage({"event": "metrics_unavailable", "directory": str(self.multiprocess_dir),
                                           "error": str(e)}))

    def _child(self, family: str, values: tuple[str, ...]) -> Any:
        key = (family, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.families[family].labels(*values)
        return child

    def exposition(self) -> bytes:
        """The Prometheus text format of every worker's values (this app's, without a directory)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry)
