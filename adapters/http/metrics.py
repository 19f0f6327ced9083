"""Prometheus metrics through prometheus_client, added up over every worker process of a server.

uvicorn's `--workers N` runs N processes and a scrape reaches one of them. prometheus_client's
multiprocess mode (what MLServer uses) has every process write its values to files of its own
in one directory, PROMETHEUS_MULTIPROC_DIR, and a scrape (answered by any worker) adds up every
file in it; files of workers that exited stay, so counts never go back when a worker is replaced.
`python -m adapters.serve` makes a fresh directory for each server it starts and sets the
variable before any worker imports prometheus_client, which chooses its mode at import. Without
it (Lambda, tests, a bare `uvicorn` without the variable), each process counts its own requests
in a registry of its app.

Every metric here is a counter or a histogram: nothing needs `mark_process_dead` (live gauges only).
The service must never fail because of its metrics: a value that cannot be written (the
directory removed, a full disk) is logged once and the request goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from adapters.logs import JsonMessage

logger = logging.getLogger("sklearn_serve.http")

PREFIX = "sklearn_serve"
# Prometheus' default buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# A client chooses the method it sends: any other is counted as OTHER, so labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
# The text format every Prometheus reads (2.x and 3.x); our names need none of 1.0.0's escaping.
MEDIA_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# The variable prometheus_client reads (at import) for its multiprocess mode.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# An increment an endpoint asks for beside its request's own: (family, label values, amount).
Increment = tuple[str, tuple[str, ...], float]
# Where an endpoint leaves its request's other increments (in the ASGI scope's state) for the
# middleware to add with the request's own.
EVENTS = "metric_events"

# (name, type, help, label names), as /openapi.json documents them.
FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("http_requests_total", "counter", "HTTP requests answered, by route template, method and status.",
     ("route", "method", "status")),
    ("http_request_duration_seconds", "histogram",
     "Time from receiving a request to sending the end of its response, by route template and method.",
     ("route", "method")),
    ("predictions_total", "counter",
     "Predictions stored by this server (a retry that returns a stored prediction is not counted again).",
     ("model_version", "predicted_class")),
    ("outcomes_total", "counter",
     "True outcomes recorded with POST /update (setting one again counts again), with the class that "
     "had been predicted.", ("true_class", "predicted_class")),
)


class Metrics:
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

    @staticmethod
    def prediction_events(stored: Iterable[tuple[str, bool]]) -> list[Increment]:
        """Newly stored predictions, as (model version, predicted class)."""
        counts: dict[tuple[str, str], float] = {}
        for version, predicted in stored:
            key = (version, str(int(predicted)))
            counts[key] = counts.get(key, 0) + 1
        return [("predictions_total", key, amount) for key, amount in counts.items()]

    @staticmethod
    def outcome_events(true_class: int, predicted_class: bool) -> list[Increment]:
        return [("outcomes_total", (str(true_class), str(int(predicted_class))), 1)]

    def exposition(self) -> bytes:
        """The Prometheus text format of every worker's values (this app's, without a directory)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry)
